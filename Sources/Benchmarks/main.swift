import KFACPINN
print("benchmarks")
