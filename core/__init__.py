"""The shared kernel: contracts, errors, the target contract, the trajectory and its fold.

Every other package of ours may import it; it imports none of them.
"""
