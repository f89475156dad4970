"""GeodesicOptions carries every keyword of geodesic(); an options call equals the keyword call."""

import inspect

import pytest
import torch

from tps.diffusion.gaussian import GaussianMixture
from tps.spacetime import LowVariance, geodesic
from tps.spacetime.options import GeodesicOptions

torch.set_num_threads(1)


@pytest.fixture
def gmm_pair():
    gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    return gmm, a, b


def test_options_are_the_keywords_of_geodesic_docstring():
    # every option is documented in geodesic()'s Parameters section
    doc = inspect.getdoc(geodesic)
    for name in GeodesicOptions.names():
        assert f"{name} :" in doc or f", {name} :" in doc or f"{name}, " in doc, name


def test_options_call_is_bit_identical_to_keyword_call(gmm_pair):
    gmm, a, b = gmm_pair
    kw = dict(logsnr=4.0, n_points=12, n_nodes=4, max_iter=8, init_dips=(4.0, 0.0), coarse_points=8, coarse_iter=4,
              constraints=(LowVariance(1.0),))
    r1 = geodesic(gmm, a, b, **kw)
    r2 = geodesic(gmm, a, b, GeodesicOptions(**kw))
    r3 = geodesic(gmm, a, b, GeodesicOptions(logsnr=4.0, n_points=12), n_nodes=4, max_iter=8, init_dips=(4.0, 0.0),
                  coarse_points=8, coarse_iter=4, constraints=(LowVariance(1.0),))
    for r in (r2, r3):
        assert torch.equal(r.x, r1.x) and torch.equal(r.logsnr, r1.logsnr)
        assert float(r.energy) == float(r1.energy) and r.n_evaluations == r1.n_evaluations


def test_unknown_option_is_a_type_error(gmm_pair):
    gmm, a, b = gmm_pair
    with pytest.raises(TypeError, match="unknown option 'n_point'"):
        geodesic(gmm, a, b, n_point=12)
    with pytest.raises(TypeError, match="options: expected a GeodesicOptions"):
        geodesic(gmm, a, b, {"n_points": 12})


def test_key_is_json_ready_and_leaves_out_objects():
    import json

    key = GeodesicOptions(init_dips=(1.0, 2.0), constraints=(LowVariance(1.0),)).key()
    assert "constraints" not in key and "progress" not in key
    assert json.loads(json.dumps(key)) == key
