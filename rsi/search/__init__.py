"""Search over a tree of candidates: the archive, parent-selection strategies, paired statistics.

archive = Archive.rooted(root_scores)                 # every evaluated node, with its parent
strategy = make_strategy("archive", seed=0)           # greedy | best-first | archive
parents = strategy.select(archive, k=4)               # K parents for one generation
comparison = paired_comparison(parent, child, confidence=0.9)
"""
