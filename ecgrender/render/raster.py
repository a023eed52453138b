"""Numba kernels of the fast renderer: area coverage of a thick polyline, straight at output resolution.

The stroke matplotlib/Agg draws for a polyline with round joins is the union of one "capsule" per
segment (the segment widened by half the line width on each side, with a disc of that radius at
each vertex); the ends get square (projecting) caps. Because the polyline is the graph of a
function of x, the union meets every vertical line x = const in ONE interval [lo(x), hi(x)].
`stroke_envelope` computes that interval at `sub` sample columns per frame pixel column,
`box_coverage` integrates it exactly over the rows of each output pixel's block of frame pixels
and `to_grey` turns the covered area into grey levels. Every kernel is single-threaded.
"""

from __future__ import annotations

import math

import numba
import numpy as np


def _jit(func):
    """Compile lazily on first call; keep the machine code on disk when a cache folder is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(func)
    except RuntimeError:  # no writable cache location (read-only install and no NUMBA_CACHE_DIR)
        return numba.njit(cache=False, nogil=True)(func)


@numba.njit
def _span(xa, xb, sub, n):
    """Indices of the sample columns (centres (q + 0.5) / sub) with xa <= centre <= xb, clipped to [0, n)."""
    return max(0, int(math.ceil(xa * sub - 0.5))), min(n - 1, int(math.floor(xb * sub - 0.5)))


@numba.njit
def _side(xa, ya, xb, slope, sub, step, lo, hi):
    """Widen [lo, hi] at the sample columns in [xa, xb] (xa <= xb) by the line y = ya + (x - xa) * slope.

    sub: sample columns per frame pixel column, step = 1 / sub.
    """
    q0, q1 = _span(xa, xb, sub, lo.size)
    if q0 >= q1:  # at most one column (dense lines): update it without a hard-to-predict branch
        q = min(q0, lo.size - 1)
        y = ya + ((q + 0.5) * step - xa) * slope
        hit = q0 == q1
        lo[q] = min(lo[q], y if hit else np.inf)
        hi[q] = max(hi[q], y if hit else -np.inf)
        return
    for q in range(q0, q1 + 1):
        y = ya + ((q + 0.5) * step - xa) * slope
        lo[q] = min(lo[q], y)
        hi[q] = max(hi[q], y)


@numba.njit
def _edge(xa, ya, xb, yb, sub, step, lo, hi):
    """Widen [lo, hi] by the straight edge (xa, ya)-(xb, yb), in either direction."""
    if xb < xa:
        xa, xb, ya, yb = xb, xa, yb, ya
    if xb > xa:
        _side(xa, ya, xb, (yb - ya) / (xb - xa), sub, step, lo, hi)


@numba.njit
def _switch(xk, yk, xq, yq, r):
    """x where the upper half-disc (xq, yq, r) starts to lie above the upper half-disc (xk, yk, r), xk < xq.

    Left of it k is the higher of the two (or q is absent), right of it q is (or k is absent).
    """
    d = xq - xk
    if d >= 2.0 * r:  # no overlap: anywhere in the gap
        return 0.5 * (xk + xq)
    w = math.sqrt(d * (2.0 * r - d))  # height of either half-disc at the other's end of the overlap
    if yk + w <= yq:  # q higher over the whole overlap
        return xq - r
    if yk >= yq + w:  # k higher over the whole overlap
        return xk + r
    dy = yq - yk  # the arcs cross at the upper intersection point of the two circles
    dist2 = d * d + dy * dy
    return 0.5 * (xk + xq) - math.sqrt(max(r * r - 0.25 * dist2, 0.0)) * dy / math.sqrt(dist2)


@_jit
def disc_envelope(px, v, idx, r, sub, env):
    """env[q] = max(env[q], upper envelope at sample column q of the half-discs (px[k], v[k], r), k in idx).

    idx: increasing vertex indices. The half-discs are translates of one concave arc, so two of
    them swap order at most once: their upper envelope is built in one pass with a stack (as
    Felzenszwalb & Huttenlocher's lower envelope of parabolas) and read at the columns in a second.
    """
    n = idx.size
    if n == 0:
        return
    stack = np.empty(n, dtype=np.int64)
    z = np.empty(n + 1)
    m = 0
    stack[0] = idx[0]
    z[0] = -np.inf
    for q in idx[1:]:
        s = _switch(px[stack[m]], v[stack[m]], px[q], v[q], r)
        while s <= z[m]:
            m -= 1
            s = _switch(px[stack[m]], v[stack[m]], px[q], v[q], r)
        m += 1
        stack[m] = q
        z[m] = s
    z[m + 1] = np.inf
    q0, q1 = _span(px[idx[0]] - r, px[idx[-1]] + r, sub, env.size)
    i = 0
    r2 = r * r
    step = 1.0 / sub
    for q in range(q0, q1 + 1):
        x = (q + 0.5) * step
        while z[i + 1] <= x:
            i += 1
        t = x - px[stack[i]]
        h2 = r2 - t * t
        if h2 >= 0.0:
            y = v[stack[i]] + math.sqrt(h2)
            if y > env[q]:
                env[q] = y


@numba.njit
def _cap(x, y, ux, uy, r, sub, step, lo, hi):
    """Widen [lo, hi] by the square cap of half-width r reaching r beyond the end (x, y) along (ux, uy)."""
    nx, ny = -uy * r, ux * r
    ex, ey = x + ux * r, y + uy * r
    _edge(x + nx, y + ny, ex + nx, ey + ny, sub, step, lo, hi)
    _edge(x - nx, y - ny, ex - nx, ey - ny, sub, step, lo, hi)
    _edge(ex + nx, ey + ny, ex - nx, ey - ny, sub, step, lo, hi)


@_jit
def stroke_envelope(px, py, r, sub, lo, hi):
    """Set lo/hi to the stroke's extent at each sample column (sub per frame pixel column, a float).

    px, py: vertices in frame pixels (px strictly increasing); r: half the line width in pixels.
    The stroke (round joins, projecting caps) is the union of every segment's rectangle, a disc
    of radius r at every inner vertex and a square cap at each end; at any x its top is the
    highest of the rectangles' long sides, the caps' sides and the upper arcs of the discs where
    the line turns down (elsewhere the disc's top lies inside the two rectangles), its bottom the
    lowest of the sides and of the lower arcs where the line turns up.
    """
    n = px.size
    step = 1.0 / sub
    lo.fill(np.inf)
    hi.fill(-np.inf)
    for k in range(n - 1):
        dx = px[k + 1] - px[k]
        dy = py[k + 1] - py[k]
        inv = r / math.sqrt(dx * dx + dy * dy)
        nx = -dy * inv
        ny = dx * inv
        slope = dy / dx
        _side(px[k] + nx, py[k] + ny, px[k + 1] + nx, slope, sub, step, lo, hi)
        _side(px[k] - nx, py[k] - ny, px[k + 1] - nx, slope, sub, step, lo, hi)
    turns_down = np.empty(n, dtype=np.int64)
    turns_up = np.empty(n, dtype=np.int64)
    n_down = n_up = 0
    for k in range(1, n - 1):  # branch-free: the turn's sign is as good as random on noisy signals
        cross = (px[k] - px[k - 1]) * (py[k + 1] - py[k]) - (py[k] - py[k - 1]) * (px[k + 1] - px[k])
        turns_down[n_down] = k
        n_down += cross < 0.0
        turns_up[n_up] = k
        n_up += cross > 0.0
    for k, e in ((0, 1), (n - 1, n - 2)):  # projecting caps, pointing away from the neighbour vertex
        dx = px[k] - px[e]
        dy = py[k] - py[e]
        inv = 1.0 / math.sqrt(dx * dx + dy * dy)
        _cap(px[k], py[k], dx * inv, dy * inv, r, sub, step, lo, hi)
    disc_envelope(px, py, turns_down[:n_down], r, sub, hi)
    neg = -lo
    disc_envelope(px, -py, turns_up[:n_up], r, sub, neg)
    for q in range(lo.size):
        lo[q] = -neg[q]


@_jit
def box_coverage(lo, hi, col_block, row_edges, row_block, cover, full):
    """Accumulate the length of [lo[j], hi[j]] inside each output pixel's block of frame rows.

    row_edges: frame-row edges of the output rows' blocks; row_block[i]: the block of frame row i.
    Partly covered blocks get the covered length in cover[block, col_block[j]]; a run of wholly
    covered blocks is marked in full (+1 at its first block, -1 after its last), summed by to_grey.
    """
    height = row_edges[-1]
    last = row_block.size - 1
    for j in range(lo.size):
        a = max(lo[j], 0.0)
        b = min(hi[j], height)
        if b <= a:
            continue
        o = col_block[j]
        ia = row_block[int(a)]
        ib = row_block[min(int(b), last)]
        if ia == ib:
            cover[ia, o] += b - a
        else:
            cover[ia, o] += row_edges[ia + 1] - a
            cover[ib, o] += b - row_edges[ib]
            full[ia + 1, o] += 1
            full[ib, o] -= 1


@_jit
def to_grey(cover, full, block_h, scale, out):
    """out = round(255 - covered length * scale); scale = (255 - ink grey) / (block area * sub)."""
    h, w = cover.shape
    run = np.zeros(w, dtype=np.int64)
    for i in range(h):
        for o in range(w):
            run[o] += full[i, o]
            out[i, o] = np.uint8(255.5 - (cover[i, o] + run[o] * block_h[i]) * scale[i, o])
