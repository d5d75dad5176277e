import sys
from pathlib import Path

import pytest
import torch

# Importable without `pip install -e training` too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_sysu(tmp_path_factory):
    from vireid_train.synthetic import write_sysu
    root = tmp_path_factory.mktemp("sysu")
    # 4 train + 1 val ids (merged for training), 3 test ids; 2 images per camera.
    return write_sysu(root, n_train=4, n_val=1, n_test=3, per_cam=2, size=(16, 32), seed=1)
