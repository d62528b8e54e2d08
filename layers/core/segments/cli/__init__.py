"""`segments-admin`, the operator's command line (`cli.admin.main`): API keys, person events
(`cli.admin_events`) and people imports (`cli.people_import`).

It ships in the same package as the core, so one `pip install -e .` gives the command and the code
it drives, but not in the Lambda layer: `layers/core/Makefile` leaves `segments/cli` out, and no
function imports it (tests/test_handlers.py checks both).
"""
