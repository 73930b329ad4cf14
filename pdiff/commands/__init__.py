"""One module per command; each is a short wrapper over a library call."""
