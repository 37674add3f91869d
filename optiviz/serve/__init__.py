"""Serving a notebook to a class: Voila sized for its visitors (voila.py), the numbers it is sized
by (capacity.py), and Binder links for this repository (binder.py)."""
