"""The knowledge base: endpoints, paths, agents and host canonicalisation. Nothing else hard-codes them."""
