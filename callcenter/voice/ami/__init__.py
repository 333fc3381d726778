"""The Asterisk Manager Interface: our own small client, the event listener and the originator.

``protocol`` (wire format), ``client`` (connection, actions, events, reconnect), ``listener`` (AMI events
into the contact record and screen-pops), ``originate`` (outbound calls), ``main`` (process wiring).
"""
