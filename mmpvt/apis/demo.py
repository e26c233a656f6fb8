"""The README's main job: synthetic data -> training -> evaluation -> a picture of predictions."""
import glob
import os
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np

from .runner import (build_runner, configure_test, configure_train, find_resume_checkpoint,
                   load_config, run_test)
from .demo_data import ensure_dataset


def prediction_grid(image_paths: List[str], out_file: str, columns: int = 4,
                    tile_height: int = 256) -> str:
    """Tile drawn predictions (any sizes) into one PNG, `columns` per row."""
    if not image_paths:
        raise FileNotFoundError('no prediction drawings to tile')
    tiles = []
    for path in image_paths:
        img = cv2.imread(path)
        scale = tile_height / img.shape[0]
        tiles.append(cv2.resize(img, (max(1, round(img.shape[1] * scale)), tile_height)))
    width = max(t.shape[1] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    cv2.imwrite(out_file, np.concatenate(rows, axis=0))
    return out_file


def run_demo(config: str = 'configs/demo/retinanet_pvt_t.py', data_root: str = 'data/shapes',
             work_dir: Optional[str] = None, cfg_options: Optional[dict] = None,
             num_pictures: int = 8, resume: bool = False) -> dict:
    """Generate the data if missing, train `config`, evaluate it and draw predictions.

    Returns dict(metrics=..., checkpoint=..., picture=..., work_dir=...).
    """
    ensure_dataset(data_root)
    os.environ['MMPVT_DEMO_DATA'] = osp.join(osp.abspath(data_root), '')
    cfg = load_config(config, cfg_options, work_dir=work_dir)
    work_dir = osp.abspath(cfg.work_dir)
    configure_train(cfg, resume='auto' if resume else None)
    build_runner(cfg).train()

    checkpoint = find_resume_checkpoint(work_dir)
    test_cfg = load_config(config, cfg_options, work_dir=work_dir)
    show_dir = osp.join(work_dir, 'predictions')
    configure_test(test_cfg, checkpoint, show_dir=show_dir)
    metrics = run_test(test_cfg)
    drawn = sorted(p for ext in ('png', 'jpg')
                   for p in glob.glob(osp.join(show_dir, '**', f'*.{ext}'), recursive=True))
    picture = prediction_grid(drawn[:num_pictures], osp.join(work_dir, 'predictions.png'))
    return dict(metrics=metrics, checkpoint=checkpoint, picture=picture, work_dir=work_dir)
