"""The outbound dialler: who may be called now (rules), which scheduler may dial (lease), claiming a
task exactly once (claims), the channels that place the call (channels) and the paced loop (engine).

Nothing here reads the clock: every function takes an aware ``now`` or a ``clock``.
"""
