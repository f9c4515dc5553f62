"""MedSSL engine. Imports nothing on purpose: the app imports engine.data without pulling in torch."""
