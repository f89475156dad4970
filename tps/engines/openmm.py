"""OpenMM Langevin engine and THE OpenMM context cache of the package.

:class:`OpenMMLangevinEngine` runs one replica at a time (:meth:`~OpenMMLangevinEngine.batches`
gives ranges of one) in one :class:`openmm.Context` with a ``LangevinMiddleIntegrator``; its
integrator stream continues from replica to replica. With ``restraint=True`` a copy of the
system carries one :class:`openmm.CustomExternalForce` ``0.5 k |x - x0|^2`` (all particles, global
``k_restraint``, per-particle centres; :func:`add_restraint`) in its own force group, moved with
:func:`set_restraint`; the energies reported exclude it.

:func:`context_for` (one :class:`ContextCache` per thread) is the one place where contexts for
dynamics are created: keyed by the SHA-256 of the system XML, the integrator settings, the
platform request, platform properties and whether the restraint is added. A cached context asked
for with a seed is reseeded and reinitialised (OpenMM reads the seed only then), which gives the
stream of a new context with that seed.

Units: nm, ps, K, kJ/mol; stiffness kJ/mol/nm^2; velocities nm/ps.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.potentials.openmm import boltzmann_kT, select_platform

__all__ = ["OpenMMLangevinEngine", "ContextCache", "CachedContext", "context_for", "add_restraint", "set_restraint",
           "RESTRAINT_EXPRESSION"]

#: Energy expression of the restraint; ``k_restraint`` is global, ``x0, y0, z0`` per particle.
RESTRAINT_EXPRESSION = "0.5*k_restraint*((x-x0)^2+(y-y0)^2+(z-z0)^2)"
_KJ = unit.kilojoule_per_mole
_NM_PS = unit.nanometer / unit.picosecond


def add_restraint(system: openmm.System, *, group: Optional[int] = None) -> tuple:
    """Add the all-atom harmonic restraint force to ``system`` (in place).

    Parameters
    ----------
    system : openmm.System
    group : int, optional
        Force group of the restraint; default: the highest group (<= 31) no other force uses.

    Returns
    -------
    force : openmm.CustomExternalForce
        Centres start at 0, ``k_restraint`` at 0 kJ/mol/nm^2.
    group : int

    Raises
    ------
    ValueError
        If ``group`` is already used, or no force group is free.

    Examples
    --------
    A particle 0.5 nm from the restraint centre at stiffness 100 kJ/mol/nm^2 has restraint
    energy ``100/2 * 0.5^2 = 12.5`` kJ/mol:

    >>> import numpy as np, openmm
    >>> system = openmm.System(); _ = system.addParticle(12.0)
    >>> force, group = add_restraint(system)
    >>> group
    31
    >>> context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    >>> context.setPositions(np.array([[0.3, 0.0, 0.4]]))
    >>> set_restraint(context, force, np.zeros((1, 3)), 100.0)
    >>> e = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
    >>> round(e.value_in_unit(openmm.unit.kilojoule_per_mole), 6)
    12.5
    """
    used = {system.getForce(i).getForceGroup() for i in range(system.getNumForces())}
    if group is None:
        free = [g for g in range(31, -1, -1) if g not in used]
        if not free:
            raise ValueError("system: all 32 force groups are in use; no group left for the restraint")
        group = free[0]
    elif group in used:
        raise ValueError(f"group: force group {group} is already used by a force of the system")
    force = openmm.CustomExternalForce(RESTRAINT_EXPRESSION)
    force.addGlobalParameter("k_restraint", 0.0)
    for name in ("x0", "y0", "z0"):
        force.addPerParticleParameter(name)
    for i in range(system.getNumParticles()):
        force.addParticle(i, [0.0, 0.0, 0.0])
    force.setForceGroup(group)
    system.addForce(force)
    return force, group


def set_restraint(context: openmm.Context, force: openmm.CustomExternalForce, centre, stiffness: float) -> None:
    """Move the restraint of ``context`` to ``centre`` (``(n_atoms, 3)`` nm) with ``stiffness`` kJ/mol/nm^2.

    Parameters
    ----------
    context : openmm.Context
        Of a system to which :func:`add_restraint` added ``force``.
    force : openmm.CustomExternalForce
    centre : array, shape ``(n_atoms, 3)``, nm
    stiffness : float
        kJ/mol/nm^2.

    Examples
    --------
    See :func:`add_restraint`.
    """
    centre = np.asarray(centre, dtype=np.float64)
    for i in range(centre.shape[0]):
        force.setParticleParameters(i, i, centre[i].tolist())
    force.updateParametersInContext(context)
    context.setParameter("k_restraint", float(stiffness))


@dataclass
class CachedContext:
    """One cached context and its parts (see :class:`ContextCache`).

    Attributes
    ----------
    system : openmm.System
        The context's own copy (with the restraint force when ``force`` is not None).
    integrator, context, platform
    force : openmm.CustomExternalForce or None
        The restraint force; None without restraint.
    groups : set of int or None
        Force groups of the force field (all but the restraint's); None without restraint.
    key : tuple
    """

    system: openmm.System
    integrator: openmm.Integrator
    context: openmm.Context
    platform: openmm.Platform
    force: Optional[openmm.CustomExternalForce] = None
    groups: Optional[set] = None
    key: tuple = field(default=())


def _integrator(settings: tuple) -> openmm.Integrator:
    kind = settings[0]
    if kind == "langevin-middle":
        _, temperature, friction, timestep = settings
        return openmm.LangevinMiddleIntegrator(temperature, friction, timestep)
    if kind == "verlet":
        return openmm.VerletIntegrator(settings[1])
    raise ValueError(f"integrator: expected 'langevin-middle' or 'verlet' settings, got {settings!r}")


class ContextCache:
    """Contexts reused by key (system XML digest, integrator settings, platform, restraint).

    Parameters
    ----------
    max_entries : int
        Contexts kept (least recently used evicted).

    Examples
    --------
    >>> import openmm
    >>> system = openmm.System(); _ = system.addParticle(12.0)
    >>> cache = ContextCache()
    >>> a = cache.get(system, integrator=("verlet", 0.001), platform="Reference")
    >>> b = cache.get(system, integrator=("verlet", 0.001), platform="Reference")
    >>> a is b, cache.n_created
    (True, 1)
    """

    def __init__(self, max_entries: int = 8):
        self.max_entries = int(max_entries)
        self.n_created = 0
        self._entries: OrderedDict = OrderedDict()

    def get(self, system, *, integrator: tuple = ("verlet", 0.001), platform="auto", platform_properties=None,
            restraint: bool = False, seed: Optional[int] = None, xml: Optional[str] = None) -> CachedContext:
        """The cached context for these settings (created on a miss).

        Parameters
        ----------
        system : openmm.System or None
            Copied (through its XML); never modified. May be None when ``xml`` is given.
        integrator : tuple
            ``("langevin-middle", temperature K, friction 1/ps, timestep ps)`` or ``("verlet", dt ps)``.
        platform : str or sequence of str
            See :func:`tps.potentials.openmm.select_platform`.
        platform_properties : dict, optional
        restraint : bool
            Add the restraint force (:func:`add_restraint`) to the context's system.
        seed : int, optional
            Integrator random seed: set before creation, or (cache hit) set and the context
            reinitialised, so the stream is that of a new context with this seed.
        xml : str, optional
            ``openmm.XmlSerializer.serialize(system)`` when the caller already has it.
        """
        if xml is None:
            xml = openmm.XmlSerializer.serialize(system)
        props = tuple(sorted((str(k), str(v)) for k, v in dict(platform_properties or {}).items()))
        plat_key = platform if isinstance(platform, str) else tuple(str(p) for p in platform)
        key = (hashlib.sha256(xml.encode()).hexdigest(), tuple(integrator), plat_key, props, bool(restraint))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if seed is not None:
                entry.integrator.setRandomNumberSeed(int(seed))
                entry.context.reinitialize()
            return entry
        copy = openmm.XmlSerializer.deserialize(xml)
        force = groups = None
        if restraint:
            force, group = add_restraint(copy)
            groups = {g for g in range(32) if g != group}
        integ = _integrator(tuple(integrator))
        if seed is not None:
            # OpenMM reads the seed when the context is created (or reinitialised) only.
            integ.setRandomNumberSeed(int(seed))
        plat = select_platform(copy.getNumParticles(), platform)
        context = openmm.Context(copy, integ, plat, dict(props)) if props else openmm.Context(copy, integ, plat)
        self.n_created += 1
        entry = CachedContext(copy, integ, context, plat, force, groups, key)
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        """Drop every cached context."""
        self._entries.clear()


_local = threading.local()


def context_cache() -> ContextCache:
    """This thread's :class:`ContextCache` (contexts are not shared between threads)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = ContextCache()
    return cache


def context_for(system, **settings) -> CachedContext:
    """``context_cache().get(system, **settings)``: the package's one way to get a dynamics context.

    Examples
    --------
    >>> import openmm
    >>> system = openmm.System(); _ = system.addParticle(12.0)
    >>> c1 = context_for(system, integrator=("langevin-middle", 300.0, 1.0, 0.002), platform="Reference", seed=1)
    >>> c2 = context_for(system, integrator=("langevin-middle", 300.0, 1.0, 0.002), platform="Reference", seed=2)
    >>> c1.context is c2.context
    True
    """
    return context_cache().get(system, **settings)


def _as_system(system) -> openmm.System:
    if isinstance(system, openmm.System):
        return system
    inner = getattr(getattr(system, "potential", None), "system", None)
    if not isinstance(inner, openmm.System):
        raise TypeError(f"system: expected an openmm.System, got {type(system).__name__}")
    return inner


class OpenMMLangevinEngine:
    """An :class:`~tps.engines.base.Engine` on one OpenMM context with a ``LangevinMiddleIntegrator``.

    Parameters
    ----------
    system : openmm.System (or a tps system with ``.potential.system``), or None with ``xml``
        Copied into the (cached) context; never modified.
    temperature : float
        K.
    timestep : float
        ps.
    friction : float
        1/ps.
    platform : str or sequence of str
        See :func:`tps.potentials.openmm.select_platform`.
    seed : int
        Integrator random seed.
    restraint : bool
        Add the harmonic restraint force (needed for :meth:`set_restraint`).
    xml : str, optional
        The system's XML when already serialised.
    build : bool
        False: build no context here; the engine is only a picklable recipe for :meth:`spawn`.

    Examples
    --------
    A free 12 Da particle held by a 500 kJ/mol/nm^2 restraint at x = 1 nm:

    >>> import numpy as np, openmm
    >>> system = openmm.System(); _ = system.addParticle(12.0)
    >>> engine = OpenMMLangevinEngine(system, platform="Reference", seed=1, restraint=True)
    >>> engine.batches(2)
    [range(0, 1), range(1, 2)]
    >>> engine.set_restraint(np.array([[1.0, 0.0, 0.0]]), 500.0)
    >>> engine.set_positions(np.zeros((1, 1, 3)))
    >>> engine.draw_velocities([7])
    >>> frames, energies = engine.step(2000, 4)
    >>> frames.shape, engine.n_energy_evals
    (torch.Size([1, 4, 1, 3]), 2000)
    >>> bool(abs(float(frames[0, -1, 0, 0]) - 1.0) < 0.3)
    True
    """

    energy_unit = "kJ/mol"
    #: Paths per executor task (a few seconds of MD for alanine dipeptide at the ``tps run`` defaults).
    default_task_size = 4

    def __init__(self, system, *, temperature: float = 300.0, timestep: float = 0.002, friction: float = 1.0,
                 platform="auto", seed: int = 0, restraint: bool = False, xml: Optional[str] = None,
                 build: bool = True):
        if system is None and xml is None:
            raise ValueError("system: expected an openmm.System (or xml=)")
        system = None if system is None else _as_system(system)
        self.xml = openmm.XmlSerializer.serialize(system) if xml is None else xml
        self.temperature, self.timestep, self.friction = float(temperature), float(timestep), float(friction)
        self.platform_request = platform
        self.restraint = bool(restraint)
        self.kT = boltzmann_kT(self.temperature)
        self.n_energy_evals = 0
        self.n_readouts = 0
        self._max = -float("inf")
        from tps.parallel.tasks import OPENMM_LOCK

        self.lock = OPENMM_LOCK
        if build:
            self._attach(system, int(seed))
        else:  # a recipe for spawn(seed) (executor tasks): no context in this process
            self.n_atoms = openmm.XmlSerializer.deserialize(self.xml).getNumParticles() if system is None else \
                system.getNumParticles()
            self.event_shape = (self.n_atoms, 3)

    def _attach(self, system, seed: int) -> None:
        entry = context_for(system, integrator=("langevin-middle", self.temperature, self.friction, self.timestep),
                            platform=self.platform_request, restraint=self.restraint, seed=seed, xml=self.xml)
        self.entry = entry
        self.context, self.integrator, self.platform = entry.context, entry.integrator, entry.platform
        self.n_atoms = entry.system.getNumParticles()
        self.event_shape = (self.n_atoms, 3)
        self.constrained = entry.system.getNumConstraints() > 0
        self.has_virtual_sites = any(entry.system.isVirtualSite(i) for i in range(self.n_atoms))

    # -- pickling / tasks -------------------------------------------------------------------------
    def __getstate__(self):
        keep = ("xml", "temperature", "timestep", "friction", "platform_request", "restraint", "kT", "n_atoms",
                "event_shape")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state):
        # Unpickled engines are recipes: use spawn(seed) to get a working engine in this process.
        from tps.parallel.tasks import OPENMM_LOCK

        self.__dict__.update(state)
        self.n_energy_evals = self.n_readouts = 0
        self._max = -float("inf")
        self.lock = OPENMM_LOCK

    def spawn(self, seed: int) -> "OpenMMLangevinEngine":
        """An engine with the same settings whose stream starts at ``seed`` (this thread's cached context)."""
        return OpenMMLangevinEngine(None, temperature=self.temperature, timestep=self.timestep, friction=self.friction,
                                    platform=self.platform_request, seed=seed, restraint=self.restraint, xml=self.xml)

    # -- protocol ---------------------------------------------------------------------------------
    def batches(self, n: int) -> list:
        """One replica at a time: ``[range(0, 1), ..., range(n - 1, n)]``."""
        return [range(i, i + 1) for i in range(int(n))]

    def reseed(self, seed: int) -> None:
        """Restart the integrator stream at ``seed`` (reinitialises the context) and zero the counters."""
        self.integrator.setRandomNumberSeed(int(seed))
        self.context.reinitialize()
        self.n_energy_evals = self.n_readouts = 0

    def _one(self, x, name):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        if x.shape == (1, self.n_atoms, 3):
            x = x[0]
        if x.shape != (self.n_atoms, 3):
            raise ValueError(f"{name}: expected shape (1, {self.n_atoms}, 3), got {x.shape}")
        return x

    def set_positions(self, x) -> None:
        """Positions ``(1, n_atoms, 3)`` nm; constraints applied (tolerance 1e-8)."""
        self.context.setPositions(self._one(x, "x"))
        if self.constrained:
            self.context.applyConstraints(1e-8)
        if self.has_virtual_sites:
            self.context.computeVirtualSites()
        self._max = -float("inf")

    @property
    def max_energy(self) -> torch.Tensor:
        """Largest force-field energy read out since :meth:`set_positions`, ``(1,)`` kJ/mol."""
        return torch.tensor([self._max], dtype=torch.float64)

    def _state(self, **kw):
        if self.entry.groups is None:
            return self.context.getState(**kw)
        return self.context.getState(groups=self.entry.groups, **kw)

    def observe(self):
        """Current positions ``(1, n_atoms, 3)`` nm and force-field energy ``(1,)`` kJ/mol (one read-out)."""
        s = self._state(getPositions=True, getEnergy=True)
        self.n_readouts += 1
        x = torch.from_numpy(s.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[None])
        e = s.getPotentialEnergy().value_in_unit(_KJ)
        self._max = max(self._max, e) if e == e else float("nan")
        return x, torch.tensor([e], dtype=torch.float64)

    def draw_velocities(self, seeds) -> None:
        """Maxwell-Boltzmann velocities at ``temperature`` with OpenMM's seed ``seeds[0]``."""
        seed = int(np.asarray(seeds).reshape(-1)[0])
        self.context.setVelocitiesToTemperature(self.temperature, seed)

    def velocities(self) -> torch.Tensor:
        """Velocities ``(1, n_atoms, 3)`` nm/ps."""
        v = self.context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(_NM_PS)
        return torch.from_numpy(np.asarray(v)[None])

    def set_velocities(self, v) -> None:
        """Set velocities ``(1, n_atoms, 3)`` nm/ps."""
        self.context.setVelocities(self._one(v, "v"))

    def reverse_velocities(self) -> None:
        """Negate the velocities (backward shots)."""
        self.set_velocities(-self.velocities())

    def set_restraint(self, centre, stiffness=0.0, *, reduced: bool = False) -> None:
        """Centre ``(n_atoms, 3)`` nm and stiffness kJ/mol/nm^2 (``reduced``: 1/nm^2 times ``kT``); None: k = 0."""
        if self.entry.force is None:
            raise ValueError("restraint: this engine was built with restraint=False")
        if centre is None:
            self.context.setParameter("k_restraint", 0.0)
            return
        k = float(stiffness) * self.kT if reduced else stiffness
        set_restraint(self.context, self.entry.force, self._one(centre, "centre"), k)

    def step(self, n_steps: int, n_frames: int = 1, *, rows=None):
        """``n_steps`` MD steps, a frame (positions nm, energy kJ/mol) every ``n_steps // n_frames``."""
        n_steps, n_frames = int(n_steps), int(n_frames)
        if n_frames <= 0 or n_steps % n_frames:
            raise ValueError(f"n_frames: expected a positive divisor of n_steps={n_steps}, got {n_frames}")
        chunk = n_steps // n_frames
        frames = np.empty((1, n_frames, self.n_atoms, 3))
        energies = np.empty((1, n_frames))
        for i in range(n_frames):
            self.integrator.step(chunk)
            s = self._state(getPositions=True, getEnergy=True)
            frames[0, i] = s.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            energies[0, i] = s.getPotentialEnergy().value_in_unit(_KJ)
        self.n_energy_evals += n_steps
        self.n_readouts += n_frames
        m = float(energies.max())  # NaN propagates
        self._max = m if (m != m or m > self._max) else self._max
        return torch.from_numpy(frames), torch.from_numpy(energies)

    def restraint_energy(self) -> torch.Tensor:
        """Restraint energy ``(1,)`` kJ/mol of the current state (0 without restraint)."""
        if self.entry.groups is None:
            return torch.zeros(1, dtype=torch.float64)
        group = ({*range(32)} - self.entry.groups).pop()
        e = self.context.getState(getEnergy=True, groups={group}).getPotentialEnergy().value_in_unit(_KJ)
        return torch.tensor([e], dtype=torch.float64)

    def energy(self, x) -> torch.Tensor:
        """Force-field energy ``(1,)`` kJ/mol at ``x`` (moves the replica there, constraints applied)."""
        self.set_positions(x)
        self.n_readouts += 1
        e = self._state(getEnergy=True).getPotentialEnergy().value_in_unit(_KJ)
        return torch.tensor([e], dtype=torch.float64)
