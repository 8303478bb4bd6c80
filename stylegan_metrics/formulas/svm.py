"""Batched linear SVMs in torch: liblinear's primal L2-regularized squared-hinge problem (sklearn's LinearSVC
defaults, bias regularized as an appended constant-1 feature), solved for K label columns at once by TRON."""

from __future__ import annotations

import torch

# liblinear's TRON constants (tron.cpp): CG tolerance, step acceptance / radius update ratios, radius factors.
_CG_RTOL = 0.1
_ETA0, _ETA1, _ETA2 = 1e-4, 0.25, 0.75
_SIGMA1, _SIGMA2, _SIGMA3 = 0.25, 0.5, 4.0
_MIN_BATCH = 4  # thinner products run no faster than 4 columns in MKL: keep at least this many in a CG product
_COMPACT_AT = 0.6  # products use a gathered copy of X's rows in use when those are at most this fraction of them


def _xv(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Rows of V [k, D+1] (last entry = bias) times [X, 1]^T, without materializing the constant column: [k, N]."""
    return torch.addmm(V[:, -1:].to(X.dtype), V[:, :-1].to(X.dtype), X.T)


def _xtv(X: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """T [k, N] times [X, 1]: [k, D+1] in float64."""
    T = T.to(X.dtype)
    return torch.cat([T @ X, T.sum(1, keepdim=True)], dim=1).to(torch.float64)


def _hinge(Z: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """m * max(0, 1 - z) for margins z = y * ([x, 1] . w~) and the kept mask m: [k, N]."""
    return M * torch.clamp(1 - Z, min=0)


def _objective(Wt: torch.Tensor, H: torch.Tensor, C: float) -> torch.Tensor:
    """Per row 0.5 ||w~||^2 + C sum_i h_i^2 with h = _hinge(z, m): [k]."""
    return 0.5 * (Wt * Wt).sum(1) + C * (H * H).sum(1)


def _rows_in_use(X: torch.Tensor, used: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(X[idx], idx) for idx the rows that any of the k problems uses (used [k, N] bool), when they are at most
    _COMPACT_AT of X's rows (the tail of a solve: few attributes left, small active sets); else (X, None)."""
    in_use = used.any(0)
    if int(in_use.sum()) > _COMPACT_AT * X.shape[0]:
        return X, None
    idx = in_use.nonzero().flatten()
    return X[idx], idx


def _gradient(X: torch.Tensor, Y: torch.Tensor, H: torch.Tensor, Wt: torch.Tensor, C: float) -> torch.Tensor:
    """w~ - 2C (y * h) [X, 1]: [k, D+1] (only rows with some h > 0 contribute)."""
    Xs, idx = _rows_in_use(X, H > 0)
    T = Y * H if idx is None else Y[:, idx] * H[:, idx]
    return Wt - 2 * C * _xtv(Xs, T)


def _take(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """t[rows], without a copy when rows are all of t's rows in order."""
    return t if rows.numel() == t.shape[0] else t[rows]


def _trust_region_cg(X: torch.Tensor, A: torch.Tensor, G: torch.Tensor, delta: torch.Tensor, C: float,
                     max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """liblinear's trcg per row: CG on H s = -g, H v = v + 2C ((a * (v [X, 1]^T)) [X, 1]) with a [k, N] the active
    mask, until ||r|| <= 0.1 ||g|| or the step would leave the ball ||s|| <= delta (it then ends on the boundary).
    Rows stop independently; finished rows leave the products while at least _MIN_BATCH remain.
    Returns (s, r = -g - H s), both [k, D+1]."""
    S = torch.zeros_like(G)
    R = -G
    P = R.clone()
    rr = (R * R).sum(1)
    cgtol2 = (_CG_RTOL ** 2) * rr
    alive = rr > cgtol2
    calc = torch.arange(G.shape[0], device=G.device)  # rows in the products: all alive rows, maybe a few done
    X_calc, idx = _rows_in_use(X, A > 0)  # inactive points add nothing to H v
    A_calc = A if idx is None else A[:, idx]
    for _ in range(max_iter):
        if not bool(alive.any()):
            break
        live = alive[calc]
        if not bool(live.all()) and int(live.sum()) >= _MIN_BATCH:
            calc, A_calc, live = calc[live], A_calc[live], live[live]
            X_calc, idx = _rows_in_use(X_calc, A_calc > 0)
            A_calc = A_calc if idx is None else A_calc[:, idx]
        p, s, r, rr_c, dl = P[calc], S[calc], R[calc], rr[calc], delta[calc]
        Hp = p + 2 * C * _xtv(X_calc, A_calc * _xv(X_calc, p))
        alpha = rr_c / (p * Hp).sum(1)
        out = live & ((s + alpha[:, None] * p).norm(dim=1) > dl)
        if bool(out.any()):  # step to the boundary: tau >= 0 with ||s + tau p|| = delta
            std, sts, dtd = (s * p).sum(1), (s * s).sum(1), (p * p).sum(1)
            dsq = dl * dl
            rad = torch.sqrt(std * std + dtd * (dsq - sts))
            tau = torch.where(std >= 0, (dsq - sts) / (std + rad), (rad - std) / dtd)
            alpha = torch.where(out, tau, alpha)
        alpha = torch.where(live, alpha, torch.zeros_like(alpha))
        s = s + alpha[:, None] * p
        r = r - alpha[:, None] * Hp
        r_new = (r * r).sum(1)
        S[calc], R[calc] = s, r
        P[calc] = torch.where(live[:, None], r + (r_new / rr_c)[:, None] * p, p)
        rr[calc] = torch.where(live, r_new, rr_c)
        alive[calc] = live & ~out & (r_new > cgtol2[calc])
    return S, R


def _radius_update(delta: torch.Tensor, snorm: torch.Tensor, actred: torch.Tensor, prered: torch.Tensor,
                   gs: torch.Tensor, curv: torch.Tensor) -> torch.Tensor:
    """TRON's trust-region radius rule from the actual / predicted reduction ratio, per row: [k]."""
    alpha = torch.where(curv <= 0, torch.full_like(curv, _SIGMA3), torch.clamp(-0.5 * (gs / curv), min=_SIGMA1))
    shrink_hard = torch.minimum(torch.clamp(alpha, min=_SIGMA1) * snorm, _SIGMA2 * delta)
    shrink = torch.maximum(_SIGMA1 * delta, torch.minimum(alpha * snorm, _SIGMA2 * delta))
    keep = torch.maximum(_SIGMA1 * delta, torch.minimum(alpha * snorm, _SIGMA3 * delta))
    grow = torch.maximum(delta, torch.minimum(alpha * snorm, _SIGMA3 * delta))
    return torch.where(actred < _ETA0 * prered, shrink_hard, torch.where(
        actred < _ETA1 * prered, shrink, torch.where(actred < _ETA2 * prered, keep, grow)))


def _tron(X: torch.Tensor, Y: torch.Tensor, M: torch.Tensor, eps: torch.Tensor, C: float,
          max_iter: int) -> torch.Tensor:
    """liblinear's TRON (trust-region Newton-CG from w~ = 0) for all K rows together, each row with its own radius
    and iteration count. Row k stops at ||g_k|| <= eps_k ||g_k(0)||, after max_iter accepted steps, or on TRON's
    stagnation tests (and after 10 max_iter trials in all, a guard TRON lacks). Y, M [K, N]. Returns w~ [K, D+1]."""
    K, d = Y.shape[0], X.shape[1]
    Wt = torch.zeros(K, d + 1, dtype=torch.float64, device=X.device)
    Z = torch.zeros_like(Y)
    H = _hinge(Z, M)
    f = _objective(Wt, H, C)
    G = _gradient(X, Y, H, Wt, C)
    gnorm1 = G.norm(dim=1)
    delta = gnorm1.clone()
    search = gnorm1 > eps * gnorm1
    iters = torch.ones(K, dtype=torch.long, device=X.device)
    for _ in range(10 * max_iter):
        rows = (search & (iters <= max_iter)).nonzero().flatten()
        if rows.numel() == 0:
            break
        Yr, Mr, Zr, Hr, Wr, Gr, fr = (_take(t, rows) for t in (Y, M, Z, H, Wt, G, f))
        S, R = _trust_region_cg(X, (Hr > 0).to(X.dtype), Gr, delta[rows], C, max_iter=2 * (d + 1))
        W_new = Wr + S
        Xs, idx = _rows_in_use(X, Mr > 0)  # margins of unkept points are never used
        if idx is None:
            Z_new = Zr + Yr * _xv(X, S)
        else:
            Z_new = Zr.clone()
            Z_new[:, idx] += Yr[:, idx] * _xv(Xs, S)
        H_new = _hinge(Z_new, Mr)
        f_new = _objective(W_new, H_new, C)
        gs = (Gr * S).sum(1)
        prered = -0.5 * (gs - (S * R).sum(1))
        actred = fr - f_new
        snorm = S.norm(dim=1)
        dl = torch.where(iters[rows] == 1, torch.minimum(delta[rows], snorm), delta[rows])
        delta[rows] = _radius_update(dl, snorm, actred, prered, gs, f_new - fr - gs)
        accept = actred > _ETA0 * prered
        done = torch.zeros_like(accept)
        if bool(accept.any()):
            acc = rows[accept]
            Ya, Za, Ha = (_take(t, accept.nonzero().flatten()) for t in (Yr, Z_new, H_new))
            if acc.numel() == K:  # every row stepped: take the new margins without a scatter
                Z, H = Za, Ha
            else:
                Z[acc], H[acc] = Za, Ha
            Wt[acc], f[acc] = W_new[accept], f_new[accept]
            G[acc] = _gradient(X, Ya, Ha, Wt[acc], C)
            iters[acc] += 1
            done[accept] = G[acc].norm(dim=1) <= eps[acc] * gnorm1[acc]
        fr = f[rows].abs()
        done |= ((actred.abs() <= 0) & (prered <= 0)) | ((actred.abs() <= 1e-12 * fr) & (prered.abs() <= 1e-12 * fr))
        search[rows[done]] = False
    return Wt


def svm_objective(X: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None, W: torch.Tensor,
                  b: torch.Tensor, *, C: float = 1.0) -> torch.Tensor:
    """liblinear's objective per attribute in float64, 0.5 (||w||^2 + b^2) + C sum_{kept i}
    max(0, 1 - y_i (w . x_i + b))^2 with y = +-1; X [N, D], labels / mask [N, K] bool, W [K, D], b [K]: [K]."""
    X = X.to(torch.float64)
    Y = labels.T.to(torch.float64) * 2 - 1
    M = torch.ones_like(Y) if mask is None else mask.T.to(torch.float64)
    Wt = torch.cat([W.to(torch.float64), b.to(torch.float64)[:, None]], dim=1)
    return _objective(Wt, _hinge(Y * _xv(X, Wt), M), C)


def fit_linear_svms(X: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, *, C: float = 1.0,
                    tol: float = 1e-4, max_iter: int = 1000, device=None,
                    dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit K linear SVMs at once; attribute k uses the points mask[:, k] with labels[:, k] (True = +1) and minimizes
    liblinear's 0.5 (||w||^2 + b^2) + C sum max(0, 1 - y (w . x + b))^2 (LinearSVC with its defaults) by TRON,
    stopping as liblinear at ||g|| <= tol * max(min(#pos, #neg), 1) / #kept * ||g(w=0)||.
    Attributes whose kept labels are all one class (or that keep no point) get w = 0, b = +1 (all positive) or -1.
    X [N, D]; labels, mask [N, K] bool (mask None = all points). dtype: of X's copy and the products with it
    (margins, iterates and objective stay float64); float32 is ~2x faster on CPU and agrees with float64 to
    ~1e-7 in w; None (default) = float32 for float32 X, else float64.
    Returns (W [K, D], b [K]), float64 on the CPU."""
    if X.ndim != 2 or labels.ndim != 2 or labels.shape[0] != X.shape[0]:
        raise ValueError(f"X [N, D] and labels [N, K] must share N: got {tuple(X.shape)} and {tuple(labels.shape)}")
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must match labels {tuple(labels.shape)}")
    if dtype is None:
        dtype = torch.float32 if X.dtype == torch.float32 else torch.float64
    device = X.device if device is None else torch.device(device)
    Xd = X.to(device=device, dtype=dtype).contiguous()
    pos_mask = labels.to(device=device, dtype=torch.bool).T
    keep = torch.ones_like(pos_mask) if mask is None else mask.to(device=device, dtype=torch.bool).T
    pos = (keep & pos_mask).sum(1)
    kept = keep.sum(1)
    neg = kept - pos
    degenerate = (pos == 0) | (neg == 0)
    M = (keep & ~degenerate[:, None]).to(torch.float64)
    Y = pos_mask.to(torch.float64) * 2 - 1
    eps = tol * torch.clamp(torch.minimum(pos, neg), min=1) / torch.clamp(kept, min=1)
    Wt = _tron(Xd, Y, M, eps.to(torch.float64), C, max_iter).cpu()
    degenerate = degenerate.cpu()
    Wt[degenerate] = 0.0
    Wt[degenerate, -1] = torch.where(pos.cpu()[degenerate] > 0, 1.0, -1.0).to(torch.float64)
    return Wt[:, :-1].contiguous(), Wt[:, -1].clone()


def predict_linear_svms(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, *, chunk: int = 16384) -> torch.Tensor:
    """[N, K] bool: (X @ W.T + b) > 0, in float64, in row chunks, on W's device; returned on the CPU."""
    W64, b64 = W.to(torch.float64), b.to(torch.float64)
    out = [torch.addmm(b64[None], x.to(device=W64.device, dtype=torch.float64), W64.T) > 0
           for x in X.split(chunk)]
    return torch.cat(out).cpu() if out else torch.zeros(0, W.shape[0], dtype=torch.bool)
