"""The ``recplan`` command line: one Typer sub-app or command module per noun (see ``main.py``)."""
