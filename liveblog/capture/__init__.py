"""Everything that enters a session's stream: notes from note-takers, audience votes, social feeds."""
