"""What people see: live status lines (progress.py) and tables (tables.py)."""
