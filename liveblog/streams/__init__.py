"""Live fan-out of each session's ordered stream, and the wire protocol it speaks."""
