"""`make fuzz`: the large generated-payload campaign (`python -m tests.fuzz.campaign`)."""
