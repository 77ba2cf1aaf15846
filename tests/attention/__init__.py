"""Tests of refsnn.attention; the shared finite-difference check of a Layer's backward."""
import numpy as np

from tests.gradcheck import numerical_grad, rel_error


def layer_grad_errors(layer, x, *, train=True, seed=0, skip=()):
    """Relative errors of ``layer.backward`` against centred differences (float64).

    The loss is ``L = sum(w * layer.forward(x)[0])`` with a fixed random ``w``; returns a dict
    ``{'x': err, param_name: err, ...}`` over the input and every parameter not in ``skip``.
    """
    w = np.random.default_rng(seed).normal(size=layer.forward(x, train)[0].shape)
    y, cache = layer.forward(x, train)
    dx, grads = layer.backward(w, cache)
    assert set(grads) == set(layer.params), (sorted(grads), sorted(layer.params))

    def loss_of_x(xx):
        return float(np.sum(w * layer.forward(xx, train)[0]))

    errors = {"x": rel_error(dx, numerical_grad(loss_of_x, x))}
    for name, p in layer.params.items():
        if name in skip:
            continue

        def loss_of_p(pp, name=name):
            old = layer.params[name]
            layer.params[name] = pp
            try:
                return float(np.sum(w * layer.forward(x, train)[0]))
            finally:
                layer.params[name] = old
        errors[name] = rel_error(grads[name], numerical_grad(loss_of_p, p))
    return errors
