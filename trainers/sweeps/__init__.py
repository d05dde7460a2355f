"""Sweeps: the sweep file (a base recipe and a grid), running its variants, and early stop of weak ones."""
