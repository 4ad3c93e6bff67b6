"""Graph store backends; each registers itself in :data:`graph.store.BACKENDS`."""
