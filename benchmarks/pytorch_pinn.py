"""A straightforward PyTorch (CPU, float64) implementation of the quantities the side-by-side
benchmark times, for one case:

- forward: a direct forward Laplacian (value, gradient and Laplacian columns pushed through
  the layers, one matmul per layer over all N*(d+2) rows) on the interior points, and the
  residuals; also the same through autograd (torch.func: trace of the Hessian, vmapped);
- loss + gradient: the forward Laplacian and loss.backward();
- Kronecker factors: one forward pass keeping the layer inputs, one backward pass of the
  summed residuals for the output adjoints, then A = Z~^T Z~ / (N S), B = G^T G / N per layer
  (interior, KFAC-expand) and the same for the boundary term;
- one KFAC step (grid line search over 2^0 ... 2^-30, damping 1e-10, ema 0.95) and one KFAC*
  step (step size and momentum from the 2x2 quadratic model with Jacobian-vector products by
  torch.func.jvp), each with the exact Kronecker-sum solve by Cholesky + symmetric eigh.

Run by benchmarks/compare_pytorch.py; prints one JSON line:
    python3 benchmarks/pytorch_pinn.py CASE THREADS
"""
import json
import math
import resource
import sys
import time

import torch
from torch.func import functional_call, hessian, jvp, vmap

torch.set_default_dtype(torch.float64)

CASES = {
    "small2": (2, [64], 900, 120), "medium2": (2, [64, 64, 48, 48], 900, 120),
    "big2": (2, [256, 256, 128, 128], 900, 120), "big5": (5, [256, 256, 128, 128], 3000, 500),
    "huge100": (100, [768, 768, 512, 512], 100, 20),
}
GRID = [2.0 ** -k for k in range(31)]


def make_network(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def linear_params(params):
    """[(W, b), ...] of the linear layers from a flat parameter list."""
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def taylor_forward(params, x, keep=None):
    """Columns (u, grad u, Laplacian u) per point, shape (N, d + 2); with `keep` a list, the
    layer inputs (N, S, h_in) and pre-activations (N, S, h_out) are appended to it."""
    n, d = x.shape
    z = torch.zeros(n, d + 2, d)
    z[:, 0, :] = x
    z[:, 1:d + 1, :] = torch.eye(d)
    layers = linear_params(params)
    mask = torch.zeros(d + 2, 1)
    mask[0] = 1
    for i, (w, b) in enumerate(layers):
        out = z @ w.T + mask * b
        if keep is not None:
            keep.append((z, out))
        if i == len(layers) - 1:
            return out[:, :, 0]
        v, j, t = out[:, 0], out[:, 1:d + 1], out[:, d + 1]
        a = torch.tanh(v)
        s1 = 1 - a * a
        s2 = -2 * a * s1
        z = torch.cat([a[:, None], s1[:, None] * j, (s1 * t + s2 * (j * j).sum(1))[:, None]], 1)


def value_forward(params, x, keep=None):
    """u at the points (N,); with `keep`, layer inputs (N, 1, h_in) and outputs (N, 1, h_out)."""
    z = x[:, None, :]
    layers = linear_params(params)
    for i, (w, b) in enumerate(layers):
        out = z @ w.T + b
        if keep is not None:
            keep.append((z, out))
        if i == len(layers) - 1:
            return out[:, 0, 0]
        z = torch.tanh(out)


class Problem:
    def __init__(self, name):
        d, hidden, n, m = CASES[name]
        g = torch.Generator().manual_seed(1)
        self.x = torch.rand(n, d, generator=g)
        self.f = torch.rand(n, generator=g)
        self.xb = torch.rand(m, d, generator=g)
        self.xb[torch.arange(m), torch.randint(0, d, (m,), generator=g)] = torch.randint(0, 2, (m,), generator=g).double()
        self.gb = torch.zeros(m)
        torch.manual_seed(0)
        self.net = make_network([d] + hidden + [1])
        self.params = [p for p in self.net.parameters()]
        self.d = d

    def residuals(self, params, keep_i=None, keep_b=None):
        out = taylor_forward(params, self.x, keep_i)
        r = -out[:, self.d + 1] - self.f
        rb = value_forward(params, self.xb, keep_b) - self.gb
        return r, rb

    def loss(self, params):
        r, rb = self.residuals(params)
        return 0.5 * (r * r).mean() + 0.5 * (rb * rb).mean()


def autograd_laplacian(problem):
    """Δu by autograd: the trace of the Hessian of u(x), vmapped over the points."""
    names = dict(problem.net.named_parameters())

    def u(x):
        return functional_call(problem.net, names, (x[None, :],))[0, 0]
    return vmap(lambda x: torch.trace(hessian(u)(x)))(problem.x)


def kronecker_factors(problem, params):
    """Per layer (A_Ω, B_Ω, A_∂, B_∂), KFAC-expand, bias last in A; also the loss gradient and
    the residuals (from the same passes)."""
    keep_i, keep_b = [], []
    r, rb = problem.residuals(params, keep_i, keep_b)
    n, m = r.shape[0], rb.shape[0]
    outs = [o for _, o in keep_i] + [o for _, o in keep_b]
    adjoints = torch.autograd.grad(r.sum() + rb.sum(), outs)
    gi, gb = adjoints[:len(keep_i)], adjoints[len(keep_i):]
    factors, grads = [], []
    for (zi, _), g_i, (zb, _), g_b in zip(keep_i, gi, keep_b, gb):
        s = zi.shape[1]
        bias = torch.zeros(n, s, 1)
        bias[:, 0] = 1
        zti = torch.cat([zi, bias], 2).reshape(n * s, -1)
        ztb = torch.cat([zb, torch.ones(m, 1, 1)], 2).reshape(m, -1)
        gi2, gb2 = g_i.reshape(n * s, -1), g_b.reshape(m, -1)
        factors.append((zti.T @ zti / (n * s), gi2.T @ gi2 / n, ztb.T @ ztb / m, gb2.T @ gb2 / m))
        # ∇W~ = Σ (r_n/N) g z~ᵀ over the interior columns + the boundary term.
        wi = (r.detach() / n).repeat_interleave(s)[:, None]
        grads.append((wi * gi2).T @ zti + (rb.detach()[:, None] / m * gb2).T @ ztb)
    loss = 0.5 * (r.detach() ** 2).mean() + 0.5 * (rb.detach() ** 2).mean()
    return factors, grads, loss


def kronecker_sum_solve(a1, b1, a2, b2, g):
    """X with B1 X A1 + B2 X A2 = G (all factors damped, symmetric positive definite)."""
    def basis(p, q):
        # K with Kᵀ P K = I and Kᵀ Q K = diag(w): K = L⁻ᵀ U for P = L Lᵀ, L⁻¹ Q L⁻ᵀ = U diag(w) Uᵀ.
        low = torch.linalg.cholesky(p)
        c = torch.linalg.solve_triangular(low, torch.linalg.solve_triangular(low, q, upper=False).T, upper=False)
        w, u = torch.linalg.eigh(c)
        return torch.linalg.solve_triangular(low.T, u, upper=True), w
    ka, wa = basis(a1, a2)
    kb, wb = basis(b1, b2)
    y = (kb.T @ g @ ka) / (1 + wb[:, None] * wa[None, :])
    return kb @ y @ ka.T


class KFAC:
    def __init__(self, problem, auto, damping=1e-10, ema=0.95):
        self.p, self.auto, self.damping, self.ema = problem, auto, damping, ema
        self.state, self.previous = None, None

    def step(self):
        p, lam = self.p, self.damping
        params = [t.detach().requires_grad_() for t in p.params]
        factors, grads, loss = kronecker_factors(p, params)
        if self.state is None:
            self.state = [tuple(torch.eye(f.shape[0]) for f in fs) for fs in factors]
        self.state = [tuple(self.ema * s + (1 - self.ema) * f for s, f in zip(ss, fs))
                      for ss, fs in zip(self.state, factors)]
        direction = []
        for (a1, b1, a2, b2), g in zip(self.state, grads):
            eye_a, eye_b = torch.eye(a1.shape[0]), torch.eye(b1.shape[0])
            x = kronecker_sum_solve(a1 + lam * eye_a, b1 + lam * eye_b, a2 + lam * eye_a, b2 + lam * eye_b, g)
            direction += [-x[:, :-1], -x[:, -1]]
        flat_grad = []
        for g in grads:
            flat_grad += [g[:, :-1], g[:, -1]]
        with torch.no_grad():
            if self.auto:
                update = self.automatic(params, direction, flat_grad)
            else:
                best, alpha = loss, 0.0
                for a in GRID:
                    trial = p.loss([t + a * dt for t, dt in zip(p.params, direction)])
                    if trial < best:
                        best, alpha = trial, a
                update = [alpha * dt for dt in direction]
            for t, u in zip(p.params, update):
                t.add_(u)
        return loss

    def automatic(self, params, direction, grad):
        p, lam = self.p, self.damping

        def residuals(*ps):
            r, rb = p.residuals(list(ps))
            return torch.cat([r / math.sqrt(r.shape[0]), rb / math.sqrt(rb.shape[0])])
        primals = tuple(t.detach() for t in p.params)
        dot = lambda u, v: sum((a * b).sum() for a, b in zip(u, v))
        jd = jvp(residuals, primals, tuple(direction))[1]
        m11, b1 = (jd * jd).sum() + lam * dot(direction, direction), dot(grad, direction)
        if self.previous is None:
            alpha, mu = -b1 / m11, 0.0
            update = [alpha * dt for dt in direction]
        else:
            prev = self.previous
            jp = jvp(residuals, primals, tuple(prev))[1]
            m12 = (jd * jp).sum() + lam * dot(direction, prev)
            m22 = (jp * jp).sum() + lam * dot(prev, prev)
            sol = -torch.linalg.solve(torch.stack([torch.stack([m11, m12]), torch.stack([m12, m22])]),
                                      torch.stack([b1, dot(grad, prev)]))
            update = [sol[0] * dt + sol[1] * pt for dt, pt in zip(direction, prev)]
        self.previous = update
        return update


def median_time(body, budget=3.0, minimum=3):
    times, start = [], time.perf_counter()
    while len(times) < minimum or (time.perf_counter() - start < budget and len(times) < 50):
        t0 = time.perf_counter()
        body()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    problem = Problem(name)
    params = problem.params

    def forward():
        with torch.no_grad():
            out = taylor_forward(params, problem.x)
            return -out[:, problem.d + 1] - problem.f

    def loss_gradient():
        for t in params:
            t.grad = None
        problem.loss(params).backward()

    def factors():
        kronecker_factors(problem, [t.detach().requires_grad_() for t in params])

    result = {"case": name, "parameters": sum(t.numel() for t in params), "threads": threads,
              "forward": median_time(forward), "loss_gradient": median_time(loss_gradient),
              "factors": median_time(factors)}
    # The direct forward Laplacian agrees with autograd's Hessian trace (a check of this script).
    with torch.no_grad():
        lap = taylor_forward(params, problem.x)[:, problem.d + 1]
    result["forward_autograd"] = median_time(lambda: autograd_laplacian(problem))
    # So does the gradient assembled from the factors' passes with loss.backward().
    loss_gradient()
    _, grads, _ = kronecker_factors(problem, [t.detach().requires_grad_() for t in params])
    assembled = torch.cat([torch.cat([g[:, :-1].reshape(-1), g[:, -1]]) for g in grads])
    reference = torch.cat([t.grad.reshape(-1) for t in params])
    result["gradient_max_difference"] = float((assembled - reference).detach().abs().max())
    result["autograd_max_difference"] = float((autograd_laplacian(problem).detach() - lap).abs().max())
    for key, auto in (("kfac_step", False), ("kfac_star_step", True)):
        problem = Problem(name)
        opt = KFAC(problem, auto)
        opt.step()
        result[key] = median_time(opt.step)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
