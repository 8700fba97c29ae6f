"""``podkernel doctor``'s checks: through the engine (engine_checks.py) and of this machine
(host_checks.py), each with its fix. checks.py runs those that apply to the engine."""
