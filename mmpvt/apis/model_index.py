"""The released models by name, as mmpretrain's ``get_model`` finds its own: mmpvt's model index
(``model-index.yml``, in OpenMMLab's format, importing each config folder's ``metafile.yml``)
lists every model whose trained weights exist, with its config, weights URL and reported metrics.
``mim search mmpvt`` reads the same index.

The index and the configs sit at the repository's root in a clone (and an editable install), and
under ``mmpvt/.mim/`` in a built wheel, where OpenMMLab packages keep them."""
import os.path as osp
from typing import Dict, List

import yaml
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from ..models.builder import build_from_config
from ..models.checkpoints import fit_state_dict, load_checkpoint_file
from .runner import load_config

INDEX_NAME = 'model-index.yml'
_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def index_root() -> str:
    """The folder holding ``model-index.yml`` and ``configs/``: ``mmpvt/.mim`` (a wheel's copies;
    in a clone, links to the repository's own), else the clone that ``mmpvt`` is imported from
    (a checkout without symbolic links); FileNotFoundError naming both where neither has it."""
    for root in (osp.join(_PACKAGE, '.mim'), osp.dirname(_PACKAGE)):
        if osp.isdir(osp.join(root, 'configs')) and osp.isfile(osp.join(root, INDEX_NAME)):
            return root
    raise FileNotFoundError(f'no {INDEX_NAME} in {osp.join(_PACKAGE, ".mim")} or '
                            f'{osp.dirname(_PACKAGE)}: this mmpvt was installed without its '
                            'configs (build the wheel from a clone: pip wheel .)')


def released_models() -> Dict[str, dict]:
    """{name: the model's entry of its metafile}, in index order; each entry's ``Config`` is made
    an absolute path."""
    root = index_root()
    with open(osp.join(root, INDEX_NAME)) as f:
        metafiles = yaml.safe_load(f)['Import']
    models = {}
    for metafile in metafiles:
        with open(osp.join(root, metafile)) as f:
            for model in yaml.safe_load(f)['Models']:
                models[model['Name']] = dict(model, Config=osp.join(root, model['Config']))
    return models


def list_models(pattern: str = '') -> List[str]:
    """The released models' names that contain `pattern` (all by default)."""
    return [name for name in released_models() if pattern in name]


def get_model(name: str, pretrained: bool = False, device: str = 'cpu') -> nn.Module:
    """The released model `name` (see :func:`list_models`) built from its config, in eval mode on
    `device`. ``pretrained=True`` loads its released weights (downloaded once into
    ``$TORCH_HOME/hub/checkpoints``) strictly, converted from their layout and computing as their
    trainer did; ``pretrained=False`` builds it with PyTorch's default initialisation (no
    download, not even the backbone's ImageNet weights; ``init_weights()`` gives the recipe's).
    The config is the model's ``cfg`` (what mmdet's ``inference_detector`` reads) and
    ``_config``."""
    models = released_models()
    if name not in models:
        # the names of the same kind (the same last part: _in1k, _coco), else all
        close = [n for n in models if n.rsplit('_', 1)[-1] == name.rsplit('_', 1)[-1]]
        close = close or list(models)
        raise ValueError(f'{name!r} is no released model of mmpvt; expected one of '
                         f'{", ".join(close)}')
    entry = models[name]
    cfg = load_config(entry['Config'])
    model = build_from_config(cfg, pretrained=False)
    if pretrained:
        checkpoint = load_checkpoint_file(entry['Weights'])
        fit_state_dict(model, checkpoint, entry['Weights'], strict=True)
        _load_checkpoint_to_model(model, checkpoint, strict=False)  # it fits: nothing skipped
    model.cfg = model._config = cfg
    return model.to(device).eval()
