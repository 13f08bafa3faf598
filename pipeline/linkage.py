"""Average-linkage clustering over sparse pair scores, best pair first (deals and stories use it).

Pairs are taken in order of their own score (highest first, ties by index); two groups merge when
no pair between them is forbidden and the average score over every pair between them reaches the
threshold, so one strong pair cannot chain two different groups together. Pair sums between groups
are kept up to date as groups merge, so a merge costs the number of groups it touches, not the
product of the two groups' sizes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

Pair = tuple[int, int]


def _key(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def average_linkage(
    n: int,
    scores: dict[Pair, float | None],
    threshold: float,
    *,
    missing: float | None,
    exclusive: Sequence[Hashable] | None = None,
) -> list[list[int]]:
    """Clusters of ``range(n)`` (each sorted, clusters by their first member).

    ``scores``: (i, j) with i < j → score, None when the two may never be together. ``missing``:
    the score of a pair not in ``scores`` (None: such a pair may never be together). ``exclusive``:
    a key per item; two items with the same key are never together (a document's instruments)."""
    size = [1] * n
    keys: list[set[Hashable]] = [{exclusive[i]} if exclusive is not None else set() for i in range(n)]
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    parent = list(range(n))
    sums: dict[Pair, float] = {}
    present: dict[Pair, int] = {}
    blocked: set[Pair] = set()
    nbrs: dict[int, set[int]] = {i: set() for i in range(n)}
    for (i, j), s in scores.items():
        k = _key(i, j)
        nbrs[i].add(j)
        nbrs[j].add(i)
        if s is None:
            blocked.add(k)
        else:
            sums[k] = sums.get(k, 0.0) + s
            present[k] = present.get(k, 0) + 1

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ranked = sorted(
        ((s, p) for p, s in scores.items() if s is not None and s >= threshold), key=lambda x: (-x[0], x[1])
    )
    for _, (i, j) in ranked:
        gi, gj = find(i), find(j)
        if gi == gj:
            continue
        k = _key(gi, gj)
        if k in blocked or keys[gi] & keys[gj]:
            continue
        total = size[gi] * size[gj]
        seen = present.get(k, 0)
        if missing is None and seen < total:
            continue
        if (sums.get(k, 0.0) + (missing or 0.0) * (total - seen)) / total < threshold:
            continue
        keep, gone = k
        for other in nbrs.pop(gone):
            if other == keep:
                continue
            old, new = _key(gone, other), _key(keep, other)
            if old in blocked:
                blocked.discard(old)
                blocked.add(new)
            if old in sums:
                sums[new] = sums.get(new, 0.0) + sums.pop(old)
            if old in present:
                present[new] = present.get(new, 0) + present.pop(old)
            nbrs[other].discard(gone)
            nbrs[other].add(keep)
            nbrs[keep].add(other)
        nbrs[keep].discard(gone)
        sums.pop(k, None)
        present.pop(k, None)
        parent[gone] = keep
        size[keep] += size[gone]
        keys[keep] |= keys[gone]
        members[keep].extend(members.pop(gone))
    return [sorted(ms) for _, ms in sorted(members.items())]
