// note-taker
