import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt (comments and blanks dropped)."""
    with open(os.path.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    scope = {}
    with open(os.path.join(HERE, 'mmpvt', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


# the backbones need torch, mmengine and mmcv; each OpenMMLab task package is an extra
EXTRAS = {
    name: read_requirements(f'{name}.txt')
    for name in ('det', 'seg', 'cls', 'hub', 'deploy', 'tests')
}
EXTRAS['all'] = EXTRAS['det'] + EXTRAS['seg'] + EXTRAS['cls'] + EXTRAS['hub']

setup(
    name='mmpvt',
    version=read_version(),
    description=('Pyramid Vision Transformer (PVT and PVTv2) backbones for mmdetection, '
                 'mmsegmentation and mmpretrain'),
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmpvt', 'mmpvt.*', 'mmpvt_runtime', 'mmpvt_runtime.*']),
    # the configs and the model index, where OpenMMLab packages keep them (mim search, get_model):
    # mmpvt/.mim links to the repository's own, and a wheel holds copies
    package_data={
        'mmpvt': [
            '.mim/model-index.yml', '.mim/configs/*/*.py', '.mim/configs/*/*/*.py',
            '.mim/configs/*/*.yml'
        ]
    },
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt'),
    extras_require=EXTRAS,
    license='Apache-2.0',
)
