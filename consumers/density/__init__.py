"""Density estimation with a training-free diffusion model and a supervised generator (issue 19).

Method: "Diffusion-Model-Assisted Supervised Learning of Generative Models for Density Estimation"
(Liu, Yang, Zhang, Bao, Cao, Zhang, arXiv:2310.14458). A diffusion model whose score is not
learnt but estimated by Monte Carlo over a mini-batch of the data (:mod:`.score`) drives the
probability-flow ODE (:mod:`.ode`) from Gaussian noise to samples; the (noise, sample) pairs it
yields are labelled data for a plain MLP generator (:mod:`.generator`), so sampling is one forward
pass. :mod:`.likelihood` scores points through the same ODE. Equation tags (D1)–(D8) are this
package's:

- (D1) schedule ``α_t = 1 − (1−ε)t``, ``β_t² = ε + (1−ε)t`` on ``t ∈ [0, 1]`` (:mod:`.schedule`);
- (D2) forward process ``z_t = α_t x + β_t ξ``, ``ξ ~ N(0, I)``, i.e. the SDE
  ``dz = f(t) z dt + g(t) dW`` with ``f = d log α_t / dt``, ``g² = dβ_t²/dt − 2 f β_t²``;
- (D3) score weights ``w_j = softmax_j(−‖z − α_t x_j‖² / 2β_t²)`` and (D4) score
  ``s(z, t) = Σ_j w_j (α_t x_j − z) / β_t²`` (:mod:`.score`);
- (D5) probability-flow ODE ``dz/dt = v(z, t) = f(t) z − ½ g²(t) s(z, t)``, solved from ``t = 1``
  to ``t = 0`` (:mod:`.ode`);
- (D6) divergence ``∇·s`` in closed form, (D7) ``d log p_t(z_t)/dt = −∇·v`` (:mod:`.likelihood`);
- (D8) generator ``G: z₁ ↦ z₀`` fit by mean squared error on the ODE's pairs (:mod:`.generator`).

Entry point: :func:`consumers.density.model.fit` → :class:`~consumers.density.model.DiffusionDensity`.
"""
