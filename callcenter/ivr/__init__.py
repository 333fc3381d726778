"""The IVR: flows as data, a validator, business hours and a pure engine."""
