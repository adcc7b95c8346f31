"""kfacpinn side by side with a straightforward PyTorch implementation (benchmarks/pytorch_pinn.py).

For each case (2-d Poisson with the small, medium and big networks at 900/120 points; 5-d
Poisson, big network, 3000/500; 100-d Poisson, huge network, 100/20) it prints the median time of
the interior forward pass (u, ∇u, Δu and residuals), loss + gradient, all Kronecker factors, one
KFAC step (grid line search) and one KFAC* step, for both, with the ratio PyTorch / kfacpinn;
the peak memory of each side (every case runs in its own processes); the machine's DGEMM rate
and the GFLOP/s of kfacpinn's steps: the GEMM/SYRK/GEMV flops the library issues, and these
plus the nominal flops of its LAPACK calls (eigendecompositions, Cholesky factorisations).

    python3 benchmarks/compare_pytorch.py [--threads 2] [--cases small2,medium2,...]

PyTorch is optional: without it only kfacpinn's figures are printed.
"""
import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / ".build" / "release" / "kfacpinn-bench"
CASES = ["small2", "medium2", "big2", "big5", "huge100"]
QUANTITIES = [("forward", "forward (u, ∇u, Δu)"), ("loss_gradient", "loss + gradient"),
              ("factors", "Kronecker factors"), ("kfac_step", "KFAC step"), ("kfac_star_step", "KFAC* step")]


def run_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if not BENCH.exists():
        subprocess.run(["swift", "build", "-c", "release"], check=True, cwd=ROOT)
    have_torch = importlib.util.find_spec("torch") is not None
    threads = str(args.threads)
    dgemm = run_json([str(BENCH), "dgemm", "--threads", threads])
    print(f"{args.threads} thread(s); OpenBLAS kernel {dgemm['kernel']}; DGEMM {dgemm['dgemm_gflops']:.1f} GFLOP/s")
    if not have_torch:
        print("PyTorch is not installed (pip install torch): kfacpinn's figures only")
    for case in args.cases.split(","):
        ours = run_json([str(BENCH), "case", case, "--threads", threads])
        theirs = run_json([sys.executable, str(ROOT / "benchmarks" / "pytorch_pinn.py"), case, threads]) if have_torch else None
        print(f"\n{case}: D = {ours['parameters']}")
        print(f"  {'':24}{'kfacpinn [ms]':>15}{'PyTorch [ms]':>15}{'PyTorch/kfacpinn':>18}")
        for key, label in QUANTITIES:
            row = f"  {label:24}{ours[key] * 1e3:15.3f}"
            if theirs:
                row += f"{theirs[key] * 1e3:15.3f}{theirs[key] / ours[key]:17.2f}×"
            print(row)
        if theirs:
            print(f"  {'forward by autograd':24}{'':15}{theirs['forward_autograd'] * 1e3:15.3f}"
                  f"   (Hessian trace; max |Δ| vs direct {theirs['autograd_max_difference']:.1e})")
        peak = f"  peak memory [MiB]       {ours['peak_mib']:15.1f}"
        print(peak + (f"{theirs['peak_mib']:15.1f}" if theirs else ""))
        for key in ("kfac_step", "kfac_star_step"):
            blas = ours[key + "_flops"] / ours[key] / 1e9
            total = blas + ours[key + "_lapack_flops"] / ours[key] / 1e9
            print(f"  {dict(QUANTITIES)[key]} GEMM/SYRK rate: {blas:.1f} GFLOP/s "
                  f"({100 * blas / dgemm['dgemm_gflops']:.0f}% of DGEMM); with LAPACK's nominal flops "
                  f"{total:.1f} GFLOP/s ({100 * total / dgemm['dgemm_gflops']:.0f}%)")


if __name__ == "__main__":
    main()
