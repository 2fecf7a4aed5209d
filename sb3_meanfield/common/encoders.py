"""Population encoders: SB3 features extractors for the ``Dict(state, population, time)`` observation.

A mean field policy ``mu(s, m)`` and critic ``Q(s, a, m)`` see one agent's state ``s`` (with the
time ``t/T``) and the population ``m`` (a histogram, its moments or a KDE). The two inputs have
different structure, so they get separate encoders whose outputs are concatenated:

``phi(s, t, m) = [f_s(s, t), f_m(k m)]``  (``state_coupling="concat"``, the default)

or, with ``state_coupling="affine"``, the outer product of a context ``c(t, m) = [f_t(t), f_m(k m)]``
with ``[s, 1]``, ``phi = vec(c(t, m) [s, 1]^T)``: a linear head on these features is affine in the
agent's own state with coefficients that depend on time and population,
``mu(s, t, m) = tanh(W(t, m) s + b(t, m))``, the form of the equilibria of linear-quadratic games.

``f_s`` is an MLP. With ``population_offsets`` (the moments observation, concat coupling) its input also holds the
agent's position relative to each population, ``z^k = (p - mean^k) / std^k`` per axis: how far the agent stands from
the middle of each crowd, in units of the crowd's spread. The moments carry the same information, but a network
only reads it as a product of its inputs; the crowd cost (the density at the agent's position, a function of ``z``)
and a feedback that spreads a crowd (pushing each agent away from the middle) are simple functions of ``z``.

``f_m`` is one of

- ``"mlp"`` (default): an MLP on the flat vector;
- ``"cnn"``: the ``n x n`` crowd grid (``k = n^2`` bins, C order) as a one-channel image, strided
  convolutions, then an MLP;
- ``"deepsets"``: the histogram as the weighted point set ``{(m_j, c_j)}`` of bin masses and bin
  centres, ``f_m(m) = rho(sum_j phi(m_j, c_j))``, invariant to the order in which bins are listed;
- ``"none"``: no population input at all (``phi(s, t) = f_s(s, t)``, or ``vec(f_t(t) [s, 1]^T)`` with the
  affine coupling): the same networks as a function of time and own state only, the ablation that measures
  what reading the population is worth (a random initial law, docs/sb3_meanfield.md).

Histograms (a population box inside ``[0, 1]``) enter as ``k m``, the density relative to the
uniform law, so that the encoder sees inputs of order 1 whatever the number of bins ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import TensorDict
from torch import nn

from mfg_envs.core import check_int, check_real

#: The population encoders of the extractors (``"none"``: no population input, the ablation of time and own state).
POPULATION_ENCODERS = ("mlp", "cnn", "deepsets", "none")
STATE_COUPLINGS = ("concat", "affine")
OBSERVATION_KEYS = ("state", "population", "time")

#: Encoder sizes of the actor ``mu(s, m)`` (docs/design.md, "Actor network"): state 256-128, population 128-64.
ACTOR_EXTRACTOR_DEFAULTS: dict[str, Any] = {"state_arch": [256, 128], "population_arch": [128, 64]}
#: Encoder sizes of the critic ``Q(s, a, m)`` (docs/design.md, "Critic network"): state 256, population 128.
CRITIC_EXTRACTOR_DEFAULTS: dict[str, Any] = {"state_arch": [256], "population_arch": [128]}


def check_arch(name: str, arch: Sequence[int], allow_empty: bool = True) -> list[int]:
    """Return ``arch`` as a list of layer widths ``>= 1``, else raise ``ValueError`` naming ``name``."""
    if isinstance(arch, (str, bytes)) or not isinstance(arch, Sequence) or (not arch and not allow_empty):
        accepted = "a list of integers >= 1" + ("" if allow_empty else " (at least one)")
        raise ValueError(f"{name} must be {accepted}, got {arch!r}")
    return [check_int(f"{name}[{i}]", width) for i, width in enumerate(arch)]


def mlp(input_dim: int, arch: list[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    """Hidden layers ``arch`` with an activation after each (the identity when ``arch`` is empty)."""
    return nn.Sequential(*create_mlp(input_dim, -1, arch, activation_fn))


def output_dim(input_dim: int, arch: list[int]) -> int:
    """Width of :func:`mlp`'s output."""
    return arch[-1] if arch else input_dim


def grid_side(n_cells: int, n_dims: int, name: str) -> int:
    """Side ``n`` of a regular grid with ``n_cells = n ** n_dims`` cells, else ``ValueError`` naming ``name``."""
    side = round(n_cells ** (1.0 / n_dims))
    if side**n_dims != n_cells:
        raise ValueError(
            f"{name} needs a {n_dims}-D grid histogram: the population size k must be n**{n_dims}, got k={n_cells}"
        )
    return side


class CnnPopulationEncoder(nn.Module):
    """The ``n x n`` population grid as a one-channel image: stride-2 3x3 convolutions, flatten, MLP.

    :param n_cells: population size ``k = n^2`` (``ValueError`` when ``k`` is not a square).
    :param arch: widths of the MLP after the convolutions.
    :param channels: output channels of each convolution (each halves the grid side).
    :param activation_fn: activation after every layer.
    """

    def __init__(self, n_cells: int, arch: list[int], channels: Sequence[int], activation_fn: type[nn.Module]) -> None:
        super().__init__()
        self.side = grid_side(n_cells, 2, "population_encoder='cnn'")
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels in check_arch("cnn_channels", channels, allow_empty=False):
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), activation_fn()]
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        with th.no_grad():
            n_flatten = self.cnn(th.zeros(1, 1, self.side, self.side)).shape[1]
        self.mlp = mlp(n_flatten, arch, activation_fn)
        self.output_dim = output_dim(n_flatten, arch)

    def forward(self, population: th.Tensor) -> th.Tensor:
        return self.mlp(self.cnn(population.reshape(-1, 1, self.side, self.side)))


class DeepSetsPopulationEncoder(nn.Module):
    """Permutation-invariant encoder of a histogram: ``rho(sum_j phi(m_j, c_j))``.

    ``c_j in [0, 1]^d`` is the centre of bin ``j`` on the regular grid of ``k = n^d`` bins (C order,
    as ``mfg_envs.core.histogram`` flattens it), so listing the pairs ``(m_j, c_j)`` in another
    order gives the same output. The first layer of ``phi`` is affine in ``(m_j, c_j)``; its
    position part is the same for every sample, so it is applied to the ``k`` centres once per
    call and broadcast over the batch instead of being recomputed on ``(batch, k)`` copies.

    :param n_cells: population size ``k``.
    :param arch: widths of ``rho``.
    :param phi_arch: widths of ``phi`` (at least one layer).
    :param n_dims: dimension ``d`` of the histogram grid (``k`` must be ``n ** d``).
    :param activation_fn: activation after every layer.
    """

    centres: th.Tensor  # buffer (k, d), registered in __init__

    def __init__(
        self,
        n_cells: int,
        arch: list[int],
        phi_arch: Sequence[int],
        n_dims: int,
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        n_dims = check_int("histogram_dims", n_dims)
        side = grid_side(n_cells, n_dims, "population_encoder='deepsets'")
        phi_arch = check_arch("deepsets_phi_arch", phi_arch, allow_empty=False)
        axes = th.meshgrid(*[(th.arange(side) + 0.5) / side] * n_dims, indexing="ij")
        self.register_buffer("centres", th.stack([axis.reshape(-1) for axis in axes], dim=1), persistent=False)
        self.phi_input = nn.Linear(1 + n_dims, phi_arch[0])
        self.phi = nn.Sequential(activation_fn(), *create_mlp(phi_arch[0], -1, phi_arch[1:], activation_fn))
        self.rho = mlp(phi_arch[-1], arch, activation_fn)
        self.output_dim = output_dim(phi_arch[-1], arch)

    def forward(self, population: th.Tensor) -> th.Tensor:
        weight, bias = self.phi_input.weight, self.phi_input.bias
        position_term = nn.functional.linear(self.centres, weight[:, 1:], bias)  # (k, h), batch independent
        hidden = population.unsqueeze(-1) * weight[:, 0] + position_term  # (batch, k, h)
        return self.rho(self.phi(hidden).sum(dim=1))


class MeanFieldExtractor(BaseFeaturesExtractor):
    """Features ``phi(s, t, m) = [f_s(s, t), f_m(k m)]`` of a ``Dict(state, population, time)`` observation.

    Defaults are the actor's sizes (docs/design.md, "Actor network"); :class:`~sb3_meanfield.td3.MeanFieldTD3Policy`
    gives the critic its own (:data:`CRITIC_EXTRACTOR_DEFAULTS`).

    :param observation_space: ``Dict`` with 1-D ``Box`` entries ``state`` ``(d_s,)``, ``population``
        ``(k,)`` and ``time`` ``(1,)``.
    :param state_arch: widths of ``f_s`` on ``[s, t/T]`` (empty: the raw input).
    :param population_arch: widths of the MLP part of ``f_m`` (``rho`` for ``"deepsets"``).
    :param population_encoder: ``"mlp"``, ``"cnn"`` (square 2-D grid), ``"deepsets"`` or ``"none"`` (the
        population entry is not read: features of ``(s, t)`` only; ``population_arch`` and the other population
        keywords are then unused).
    :param activation_fn: activation after every hidden layer.
    :param cnn_channels: convolution channels of the ``"cnn"`` encoder.
    :param deepsets_phi_arch: widths of ``phi`` of the ``"deepsets"`` encoder.
    :param histogram_dims: grid dimension ``d`` of the histogram, for the ``"deepsets"`` bin centres.
    :param population_scale: factor applied to ``m`` before ``f_m``; ``None``: ``k`` when the
        population box lies in ``[0, 1]`` (a histogram or KDE on ``k`` bins), else 1 (moments).
    :param state_coupling: ``"concat"`` (``[f_s(s, t), f_m]``) or ``"affine"`` (``vec(c(t, m) [s, 1]^T)``
        with ``c = [f_t(t), f_m]``; ``state_arch`` is then the architecture of ``f_t``).
    :param state_indices: the entries of ``state`` the extractor reads (default: all). Leaving out an entry that
        no reward or transition depends on (the price model's cash, whose increments are the rewards) removes
        a spurious input: the networks then cannot depend on it. Best responses, and so the Nash gap, still
        range over all policies.
    :param population_offsets: the entries of ``state`` that are the agent's position ``p`` (``d_p`` of them), to
        add ``z^k = (p - mean^k) / max(std^k, 1e-3)`` to ``f_s``'s input for every population ``k`` whose moments
        the ``population`` entry lists (per population, ``d_p`` means then ``d_p`` stds: the ``moments``
        representation). Needs the concat coupling (with the affine one ``z`` is already affine in the state).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        state_arch: Sequence[int] = (256, 128),
        population_arch: Sequence[int] = (128, 64),
        population_encoder: str = "mlp",
        activation_fn: type[nn.Module] = nn.ReLU,
        cnn_channels: Sequence[int] = (16, 32),
        deepsets_phi_arch: Sequence[int] = (64, 64),
        histogram_dims: int = 1,
        population_scale: float | None = None,
        state_coupling: str = "concat",
        state_indices: Sequence[int] | None = None,
        population_offsets: Sequence[int] | None = None,
    ) -> None:
        state_dim, n_cells = self._check_space(observation_space)
        box = observation_space["population"]
        assert isinstance(box, spaces.Box)  # checked by _check_space
        is_histogram = bool((box.low >= 0.0).all() and (box.high <= 1.0).all())
        self.position_indices = self._check_offsets(
            population_offsets, state_dim, n_cells, state_coupling, is_histogram
        )
        n_offsets = 0 if self.position_indices is None else n_cells // 2
        indices = list(range(state_dim))
        if state_indices is not None:
            indices = [check_int(f"state_indices[{i}]", index, 0) for i, index in enumerate(state_indices)]
            if not indices or len(set(indices)) != len(indices) or max(indices) >= state_dim:
                accepted = f"at least one distinct integer in [0, {state_dim - 1}]"
                raise ValueError(f"state_indices must hold {accepted}, got {state_indices!r}")
        state_dim = len(indices)
        if state_coupling not in STATE_COUPLINGS:
            raise ValueError(f"state_coupling must be one of {STATE_COUPLINGS}, got {state_coupling!r}")
        state_arch = check_arch("state_arch", state_arch)
        population_arch = check_arch("population_arch", population_arch)
        if population_encoder == "mlp":
            population_net: nn.Module | None = mlp(n_cells, population_arch, activation_fn)
            population_dim = output_dim(n_cells, population_arch)
        elif population_encoder == "cnn":
            population_net = CnnPopulationEncoder(n_cells, population_arch, cnn_channels, activation_fn)
            population_dim = population_net.output_dim
        elif population_encoder == "deepsets":
            population_net = DeepSetsPopulationEncoder(
                n_cells, population_arch, deepsets_phi_arch, histogram_dims, activation_fn
            )
            population_dim = population_net.output_dim
        elif population_encoder == "none":
            population_net, population_dim = None, 0
        else:
            raise ValueError(f"population_encoder must be one of {POPULATION_ENCODERS}, got {population_encoder!r}")
        self.affine = state_coupling == "affine"
        if self.affine:
            features_dim = (output_dim(1, state_arch) + population_dim) * (state_dim + 1)
        else:
            features_dim = output_dim(state_dim + 1 + n_offsets, state_arch) + population_dim
        super().__init__(observation_space, features_dim)
        if population_scale is None:
            population_scale = float(n_cells) if is_histogram else 1.0
        self.population_scale = check_real("population_scale", population_scale, 0.0, low_open=True)
        self.state_encoder = mlp(1 if self.affine else state_dim + 1 + n_offsets, state_arch, activation_fn)
        #: ``None`` with ``population_encoder="none"``: the population entry is never read.
        self.population_encoder: nn.Module | None = population_net
        self.state_indices = None if state_indices is None else indices

    @staticmethod
    def _check_space(observation_space: spaces.Space) -> tuple[int, int]:
        """``(d_s, k)`` of a valid observation space, else ``ValueError``."""
        if isinstance(observation_space, spaces.Dict) and set(OBSERVATION_KEYS) <= set(observation_space.spaces):
            state, population, time = (observation_space[key] for key in OBSERVATION_KEYS)
            if (
                isinstance(state, spaces.Box)
                and isinstance(population, spaces.Box)
                and isinstance(time, spaces.Box)
                and len(state.shape) == 1
                and len(population.shape) == 1
                and time.shape == (1,)
            ):
                return state.shape[0], population.shape[0]
        raise ValueError(
            "observation_space must be a Dict with 1-D Box entries 'state' (d_s,), 'population' (k,) and "
            f"'time' (1,), got {observation_space}"
        )

    @staticmethod
    def _check_offsets(
        population_offsets: Sequence[int] | None, state_dim: int, n_cells: int, state_coupling: str, is_histogram: bool
    ) -> list[int] | None:
        """The position entries of ``population_offsets``, else ``ValueError`` naming the parameter."""
        if population_offsets is None:
            return None
        indices = [check_int(f"population_offsets[{i}]", index, 0) for i, index in enumerate(population_offsets)]
        if not indices or len(set(indices)) != len(indices) or max(indices) >= state_dim:
            raise ValueError(
                f"population_offsets must hold at least one distinct integer in [0, {state_dim - 1}], "
                f"got {population_offsets!r}"
            )
        if is_histogram or n_cells % (2 * len(indices)):
            raise ValueError(
                f"population_offsets needs the moments observation ({2 * len(indices)} numbers per population), "
                f"got a {'histogram' if is_histogram else 'population entry'} of {n_cells}"
            )
        if state_coupling != "concat":
            raise ValueError(f"population_offsets needs state_coupling='concat', got {state_coupling!r}")
        return indices

    def state_input(self, state: th.Tensor, time: th.Tensor, population: th.Tensor) -> th.Tensor:
        """``f_s``'s input ``[s, t, z^1, ..., z^K]`` (``z`` only with ``population_offsets``); ``population`` is the
        raw entry, one row per state or one row shared by all."""
        parts = [self.own_state(state), time.expand(state.shape[0], 1)]
        if self.position_indices is not None:
            n_dims = len(self.position_indices)
            moments = population.reshape(population.shape[0], -1, 2, n_dims)  # (batch, K, mean/std, d_p)
            positions = state[:, self.position_indices].unsqueeze(1)
            offsets = (positions - moments[:, :, 0]) / moments[:, :, 1].clamp_min(1e-3)
            parts.append(offsets.flatten(1))
        return th.cat(parts, dim=1)

    def own_state(self, state: th.Tensor) -> th.Tensor:
        """The entries of ``state`` the extractor reads (``state_indices``)."""
        return state if self.state_indices is None else state[:, self.state_indices]

    def encode_population(self, population: th.Tensor) -> th.Tensor:
        """``f_m(k m)`` of each row, ``(batch, 0)`` without a population encoder."""
        if self.population_encoder is None:
            return population.new_zeros((population.shape[0], 0))
        return self.population_encoder(population * self.population_scale)

    def forward(self, observations: TensorDict) -> th.Tensor:
        state, time = observations["state"], observations["time"]
        population = self.encode_population(observations["population"])
        if not self.affine:
            own = self.state_encoder(self.state_input(state, time, observations["population"]))
            return th.cat([own, population], dim=1)
        state = self.own_state(state)
        context = th.cat([self.state_encoder(time), population], dim=1)
        state_one = th.cat([state, th.ones_like(time)], dim=1)
        return (context.unsqueeze(2) * state_one.unsqueeze(1)).flatten(1)

    def shared_linear(self, state: th.Tensor, population: th.Tensor, time: th.Tensor, linear: nn.Linear) -> th.Tensor:
        """``linear(phi(s^i, t, m))`` for ``M`` agents that share the population ``m`` and the time ``t``.

        ``state`` is ``(M, d_s)``, ``population`` ``(1, k)`` and ``time`` ``(1, 1)``: the context is encoded once
        and folded into ``linear`` (weight ``W``, bias ``b``), so the per-agent work is one affine map of the agent's
        own input. Concat coupling: ``W phi + b = W_s f_s(s, t) + (W_m f_m(k m) + b)``; affine coupling:
        ``W vec(c [s, 1]^T) + b = K [s, 1] + b`` with ``K_hj = sum_c W_h,(c, j) c_c``, an affine map of ``s``.
        """
        encoded = self.encode_population(population)
        bias = th.zeros_like(linear.weight[:, 0]) if linear.bias is None else linear.bias
        if self.affine:
            state = self.own_state(state)
            context = th.cat([self.state_encoder(time), encoded], dim=1)[0]
            weight = linear.weight.view(linear.out_features, context.shape[0], state.shape[1] + 1)
            coefficients = th.matmul(context, weight)  # (h, d_s + 1): sum over the context index c
            return th.addmm(coefficients[:, -1] + bias, state, coefficients[:, :-1].T)
        own = self.state_encoder(self.state_input(state, time, population))
        width = own.shape[1]
        return th.addmm(linear.weight[:, width:] @ encoded[0] + bias, own, linear.weight[:, :width].T)


def role_extractor_kwargs(
    features_extractor_class: type[BaseFeaturesExtractor],
    role_defaults: dict[str, Any],
    shared_kwargs: dict[str, Any],
    role_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Keywords of the actor's or the critic's extractor: role defaults < shared keywords < role keywords.

    The role defaults only apply to :class:`MeanFieldExtractor` (and subclasses); another extractor
    class gets the keywords it was given.
    """
    defaults = role_defaults if issubclass(features_extractor_class, MeanFieldExtractor) else {}
    return {**defaults, **shared_kwargs, **role_kwargs}
