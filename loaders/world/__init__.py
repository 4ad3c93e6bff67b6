"""The seeded marketing world: a simulator with a known ground truth."""
