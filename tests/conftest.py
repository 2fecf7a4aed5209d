"""Every test runs with its own empty mfg_envs cache folder (``MFG_ENVS_CACHE``): none reads or fills the user's
(the walled crowds' numerical reference equilibria live there, and a cached one changes the crowd's frames)."""

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MFG_ENVS_CACHE", str(tmp_path_factory.mktemp("mfg_envs_cache")))
