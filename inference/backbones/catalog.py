"""Imports every backbone module so that its builders register (see base._load_all)."""
