import pathlib
import sys

# Import the package from this source tree (bindings/python).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
