"""Use cases of the core, one module per aggregate. Routes, AGI handlers and jobs call these."""
