"""callcenter: the core of the customer-service hotline (domain, IVR, voice adapters, storage)."""

__version__ = "0.1.0"
