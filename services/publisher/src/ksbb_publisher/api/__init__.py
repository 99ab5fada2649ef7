"""HTTP side of the publisher: the public /v1 API (no login), SSE, Atom, open data and the web pages."""
