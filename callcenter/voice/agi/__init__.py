"""Asterisk FastAGI: pyst2 adapter, threaded server, scripts, and a simulated Asterisk."""
