"""Simulated tills: plan a scenario from labelled faces, render it to video, score a replay against its truth."""
