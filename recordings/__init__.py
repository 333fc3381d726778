"""Call recordings: storage backends, ingest (Asterisk MixMonitor files, Twilio recordings), verification.

May use the core's models and services; the core never imports this package.
"""
