"""``podkernel doctor``'s checks: checks.py runs those that the engine names, through the engine;
host_checks.py holds those of this machine; check.py is one result; listener.py runs in a container."""
