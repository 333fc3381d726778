"""Twilio Programmable Voice: the IVR flows rendered as TwiML, webhooks, recordings, outbound calls.

``twiml`` renders engine steps with twilio's ``VoiceResponse``; ``hotline`` holds the webhook use cases
(flask-free: ``web/twilio.py`` checks signatures and hands the form over); ``rest`` builds the injected
REST client and places outbound calls.
"""
