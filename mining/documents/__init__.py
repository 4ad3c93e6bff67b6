"""Mining documents into the MoKG (``mokg build --documents``): spaCy reads the text (sentences,
chunks, named entities, noun chunks), mentions are linked to the store's entities, and PAIR's
stages run per chunk with the passage as evidence; every fact keeps the span that states it."""
