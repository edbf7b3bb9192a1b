import subprocess
import sys


def test_import_does_not_load_ray_or_torch():
    code = (
        "import sys, lightning_bohb, lightning_bohb.core.optimizer, lightning_bohb.core.strategies; "
        "heavy = [m for m in ('ray', 'torch', 'lightning', 'hpbandster', 'optuna', 'hyperopt') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
