"""What the engine is proven against: plain pycasbin (:mod:`.casbin`) and seeded random policies,
subjects and requests (:mod:`.synthetic`). Used by the equivalence tests and bench/decisions.py."""
