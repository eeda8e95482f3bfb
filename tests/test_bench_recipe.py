"The candidate callbacks of `bench/recipe.py` do what their rows in the learner chapter say, on real photos."
import sys
from pathlib import Path
import numpy as np, torch, pytest
from torch import nn
from fastai.vision.all import Learner, DataLoaders, CrossEntropyLossFlat, PILImage, TensorImage

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import recipe

@pytest.fixture
def learn():
    "A small conv net with batch norm, one batch of four sample photos (two species) at 64 px, ready to step."
    torch.manual_seed(0)
    folders = sorted(p for p in (ROOT/'data'/'birds30').iterdir() if p.is_dir())[:2]
    fns = [fn for f in folders for fn in sorted(f.glob('*.jpg'))[:2]]
    x = torch.stack([torch.from_numpy(np.array(PILImage.create(fn).resize((64, 64)))).permute(2, 0, 1).float()/255 for fn in fns])
    y = torch.tensor([0, 0, 1, 1])
    ds = list(zip(x, y))
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    learn = Learner(DataLoaders.from_dsets(ds, ds, bs=4), model, loss_func=CrossEntropyLossFlat())
    learn.create_opt(); learn.model.train()
    learn.xb, learn.yb, learn.training = (TensorImage(x),), (y,), True
    return learn

def test_sam_steps_from_the_weights_with_the_gradient_uphill(learn):
    sam = recipe.sharpness_aware(0.05); sam.learn = learn
    learn.loss_func(learn.model(*learn.xb), *learn.yb).backward()
    w0 = [p.detach().clone() for p in learn.model.parameters()]
    g0 = [p.grad.clone() for p in learn.model.parameters()]
    bn = learn.model[1]; stats = bn.running_mean.clone()
    sam.after_backward()
    for p, w in zip(learn.model.parameters(), w0): torch.testing.assert_close(p.detach(), w)   # back where they were
    assert any(not torch.allclose(p.grad, g) for p, g in zip(learn.model.parameters(), g0))     # the gradient taken uphill
    torch.testing.assert_close(bn.running_mean, stats)                                          # the second pass leaves batch norm's statistics
    assert bn.momentum == 0.1

def test_random_erasing_changes_training_batches_only(learn):
    erase = recipe.random_erasing(1.0); erase.learn = learn; erase.before_fit()
    x = learn.xb[0].clone()
    erase.before_batch()
    changed = (learn.xb[0] != x).flatten(1).any(1)
    assert changed.all(), changed
    learn.xb, learn.training = (x.clone(),), False
    erase.before_batch()
    assert torch.equal(learn.xb[0], x)

def test_candidates_become_callbacks():
    kw = recipe.with_callbacks({'lr': 1e-3, 'sam': 0.05, 'erase': 0.25})
    assert kw['lr'] == 1e-3 and 'sam' not in kw and 'erase' not in kw
    assert [type(c).__name__ for c in kw['cbs']] == ['SAM', 'Erase']
