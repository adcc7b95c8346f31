/*
 * Tests of the C ABI: results against independent computations (finite
 * differences through kfp_net_eval, a plain forward pass from the documented
 * parameter layout), and every class of bad input: NULL pointers and handles,
 * zero/negative sizes, dimension mismatches, non-finite values, unknown names,
 * wrong handle kinds. Each must give a status and a message and change nothing.
 * Ends with the line "N passed, M failed".
 */
#define _GNU_SOURCE /* dlsym's RTLD_DEFAULT */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kfacpinn.h"

static int passed, failed;

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            passed++;                                                         \
        } else {                                                              \
            failed++;                                                         \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

/* The call fails with `expected`, and kfp_last_error() contains `fragment`. */
#define EXPECT_ERROR(call, expected, fragment)                                                   \
    do {                                                                                         \
        kfp_status s_ = (call);                                                                  \
        EXPECT(s_ == (expected) && strstr(kfp_last_error(), (fragment)) != NULL,                 \
               "status %d (%s), message '%s', expected %d and '%s'", s_, kfp_status_string(s_), \
               kfp_last_error(), (expected), (fragment));                                        \
    } while (0)

static double max_abs_diff(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static void test_library(void) {
    EXPECT(strcmp(kfp_version_string(), KFP_VERSION_STRING) == 0, "version %s", kfp_version_string());
    EXPECT(kfp_version_number() == KFP_VERSION_MAJOR * 10000 + KFP_VERSION_MINOR * 100 + KFP_VERSION_PATCH,
           "number %d", kfp_version_number());
    EXPECT(strcmp(kfp_status_string(KFP_OK), "ok") == 0, "%s", kfp_status_string(KFP_OK));
    EXPECT(strcmp(kfp_status_string(12345), "unknown status") == 0, "%s", kfp_status_string(12345));
    EXPECT_ERROR(kfp_set_num_threads(0), KFP_ERROR_INVALID_ARGUMENT, "num_threads");
    EXPECT(kfp_set_num_threads(1) == KFP_OK && kfp_get_num_threads() == 1, "threads %d", kfp_get_num_threads());
    EXPECT(strcmp(kfp_last_error(), "") == 0, "a successful call clears the message: '%s'", kfp_last_error());
}

static void test_network(void) {
    const int64_t widths[] = {3, 5, 4, 1};
    kfp_net *net = NULL, *other = NULL;
    EXPECT(kfp_net_create(widths, 4, NULL, NULL, 7, &net) == KFP_OK && net, "%s", kfp_last_error());
    EXPECT(kfp_net_create(widths, 4, "tanh", "pytorch", 7, &other) == KFP_OK, "%s", kfp_last_error());
    int64_t d = 0, np = 0, w[8], count = 0;
    EXPECT(kfp_net_input_dim(net, &d) == KFP_OK && d == 3, "d = %lld", (long long)d);
    EXPECT(kfp_net_num_params(net, &np) == KFP_OK && np == 4 * 5 + 6 * 4 + 5, "D = %lld", (long long)np);
    EXPECT(kfp_net_widths(net, w, 8, &count) == KFP_OK && count == 4 && w[1] == 5 && w[3] == 1,
           "count %lld", (long long)count);

    /* Same seed, same parameters; evaluation follows the documented layout. */
    double theta[49], theta2[49];
    EXPECT(kfp_net_get_params(net, theta, np) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_net_get_params(other, theta2, np) == KFP_OK && max_abs_diff(theta, theta2, 49) == 0,
           "same seed gives different parameters");
    const double x[] = {0.1, -0.4, 0.7, 0.3, 0.2, -0.9};
    double u[2];
    EXPECT(kfp_net_eval(net, x, 2, 3, u) == KFP_OK, "%s", kfp_last_error());
    for (int k = 0; k < 2; k++) {
        double h1[5], h2[4], out;
        const double *W1 = theta, *b1 = theta + 15, *W2 = theta + 20, *b2 = theta + 40, *W3 = theta + 44,
                     *b3 = theta + 48;
        for (int j = 0; j < 5; j++) {
            double s = b1[j];
            for (int i = 0; i < 3; i++) s += W1[j * 3 + i] * x[3 * k + i];
            h1[j] = tanh(s);
        }
        for (int j = 0; j < 4; j++) {
            double s = b2[j];
            for (int i = 0; i < 5; i++) s += W2[j * 5 + i] * h1[i];
            h2[j] = tanh(s);
        }
        out = b3[0];
        for (int i = 0; i < 4; i++) out += W3[i] * h2[i];
        EXPECT(fabs(out - u[k]) < 1e-14, "u = %.17g, reference %.17g", u[k], out);
    }

    /* Derivatives against central finite differences of kfp_net_eval. */
    double uu[2], grad[6], lap[2];
    EXPECT(kfp_net_derivatives(net, x, 2, 3, NULL, uu, grad, lap) == KFP_OK, "%s", kfp_last_error());
    EXPECT(max_abs_diff(u, uu, 2) < 1e-15, "u differs");
    double fd_grad[6], fd_lap[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++) {
            double p[3], m[3], p2[3], m2[3], up, um, up2, um2;
            memcpy(p, x + 3 * k, sizeof p); memcpy(m, p, sizeof p); memcpy(p2, p, sizeof p); memcpy(m2, p, sizeof p);
            p[i] += 1e-5; m[i] -= 1e-5; p2[i] += 1e-3; m2[i] -= 1e-3;
            kfp_net_eval(net, p, 1, 3, &up); kfp_net_eval(net, m, 1, 3, &um);
            kfp_net_eval(net, p2, 1, 3, &up2); kfp_net_eval(net, m2, 1, 3, &um2);
            fd_grad[3 * k + i] = (up - um) / 2e-5;
            fd_lap[k] += (up2 - 2 * u[k] + um2) / 1e-6;
        }
    EXPECT(max_abs_diff(grad, fd_grad, 6) < 1e-9, "gradient vs finite differences: %g", max_abs_diff(grad, fd_grad, 6));
    EXPECT(max_abs_diff(lap, fd_lap, 2) < 1e-6, "Laplacian vs finite differences: %g", max_abs_diff(lap, fd_lap, 2));
    /* C = I given explicitly equals the default Laplacian. */
    const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    double lap2[2];
    EXPECT(kfp_net_derivatives(net, x, 2, 3, eye, NULL, NULL, lap2) == KFP_OK && max_abs_diff(lap, lap2, 2) < 1e-15,
           "explicit identity differs");

    /* Bad input: each gives a status and a message; nothing changes. */
    kfp_net *bad = (kfp_net *)(void *)&count; /* a constructor that fails sets *out to NULL */
    const int64_t zero_width[] = {3, 0, 1}, two_out[] = {3, 4, 2};
    EXPECT_ERROR(kfp_net_create(widths, 4, "relu", NULL, 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "unknown activation 'relu'");
    EXPECT(bad == NULL, "out set on failure");
    EXPECT_ERROR(kfp_net_create(widths, 4, NULL, "he", 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "unknown initialization");
    EXPECT_ERROR(kfp_net_create(zero_width, 3, NULL, NULL, 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "width 1 is 0");
    EXPECT_ERROR(kfp_net_create(two_out, 3, NULL, NULL, 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "last width must be 1");
    EXPECT_ERROR(kfp_net_create(widths, 1, NULL, NULL, 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "num_widths");
    EXPECT_ERROR(kfp_net_create(widths, -3, NULL, NULL, 1, &bad), KFP_ERROR_INVALID_ARGUMENT, "num_widths");
    EXPECT_ERROR(kfp_net_create(NULL, 4, NULL, NULL, 1, &bad), KFP_ERROR_NULL_POINTER, "widths is NULL");
    EXPECT_ERROR(kfp_net_create(widths, 4, NULL, NULL, 1, NULL), KFP_ERROR_NULL_POINTER, "out_net is NULL");
    EXPECT_ERROR(kfp_net_num_params(NULL, &np), KFP_ERROR_NULL_POINTER, "net is NULL");
    EXPECT_ERROR(kfp_net_num_params(net, NULL), KFP_ERROR_NULL_POINTER, "out_num_params is NULL");

    const double x2d[] = {0.1, 0.2}, xnan[] = {0.1, NAN, 0.3};
    EXPECT_ERROR(kfp_net_eval(net, x2d, 1, 2, u), KFP_ERROR_DIMENSION_MISMATCH, "x has 2 columns, the network expects 3");
    EXPECT_ERROR(kfp_net_eval(net, x, 0, 3, u), KFP_ERROR_INVALID_ARGUMENT, "num_points must be at least 1");
    EXPECT_ERROR(kfp_net_eval(net, x, -1, 3, u), KFP_ERROR_INVALID_ARGUMENT, "num_points");
    EXPECT_ERROR(kfp_net_eval(net, xnan, 1, 3, u), KFP_ERROR_NON_FINITE, "x has a non-finite value");
    EXPECT_ERROR(kfp_net_eval(net, NULL, 1, 3, u), KFP_ERROR_NULL_POINTER, "x is NULL");
    EXPECT_ERROR(kfp_net_eval(net, x, 1, 3, NULL), KFP_ERROR_NULL_POINTER, "u is NULL");
    const double asym[9] = {1, 2, 0, 0, 1, 0, 0, 0, 1};
    EXPECT_ERROR(kfp_net_derivatives(net, x, 2, 3, asym, uu, grad, lap), KFP_ERROR_INVALID_ARGUMENT, "not symmetric");

    double saved[49], modified[49];
    memcpy(modified, theta, sizeof modified);
    modified[10] = INFINITY;
    EXPECT_ERROR(kfp_net_set_params(net, modified, np), KFP_ERROR_NON_FINITE, "parameter vector");
    EXPECT_ERROR(kfp_net_set_params(net, theta, np - 1), KFP_ERROR_DIMENSION_MISMATCH, "num_params");
    EXPECT_ERROR(kfp_net_get_params(net, saved, np + 1), KFP_ERROR_DIMENSION_MISMATCH, "num_params");
    EXPECT(kfp_net_get_params(net, saved, np) == KFP_OK && max_abs_diff(saved, theta, 49) == 0,
           "parameters changed by failed calls");
    modified[10] = 0.5;
    EXPECT(kfp_net_set_params(net, modified, np) == KFP_OK && kfp_net_get_params(net, saved, np) == KFP_OK &&
               saved[10] == 0.5, "set_params did not set");

    /* A handle of the wrong kind. */
    kfp_operator *op = NULL;
    EXPECT(kfp_operator_create_poisson(3, &op) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_net_num_params((kfp_net *)op, &np), KFP_ERROR_WRONG_HANDLE, "net is not a kfp_net handle");
    kfp_operator_free(op);
    kfp_net_free(NULL);
    kfp_net_free(other);
    kfp_net_free(net);
}

static void test_loss(void) {
    const int64_t widths[] = {2, 8, 1};
    kfp_net *net = NULL;
    kfp_operator *op = NULL, *op3 = NULL, *heat = NULL, *lin = NULL, *fp = NULL;
    kfp_batch *batch = NULL, *batch3 = NULL, *bad = (kfp_batch *)(void *)&widths;
    kfp_operator *bad_op = NULL;
    EXPECT(kfp_net_create(widths, 3, "tanh", NULL, 3, &net) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_poisson(2, &op) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_poisson(3, &op3) == KFP_OK, "%s", kfp_last_error());
    const double xi[] = {0.2, 0.3, 0.5, 0.6, 0.9, 0.1}, fi[] = {1, 2, 3}, xb[] = {0, 0.5, 1, 0.2}, gb[] = {0.1, -0.2};
    EXPECT(kfp_batch_create(xi, fi, 3, xb, gb, 2, 2, &batch) == KFP_OK, "%s", kfp_last_error());
    int64_t ni = 0, nb = 0, bd = 0;
    EXPECT(kfp_batch_sizes(batch, &ni, &nb, &bd) == KFP_OK && ni == 3 && nb == 2 && bd == 2, "sizes");

    /* The same batch term by term: the same loss to the bit; an observation term of weight 4
     * adds 4/(2M) sum (u - y)^2; bad terms leave the batch unchanged. */
    kfp_batch *terms = NULL;
    double same = 0, plain = 0, with_data = 0, u_obs[2];
    const double yo[] = {0.25, -0.5};
    EXPECT(kfp_batch_create_empty(2, &terms) == KFP_OK &&
               kfp_batch_add_term(terms, KFP_TERM_INTERIOR, xi, fi, 3, 1.0) == KFP_OK &&
               kfp_batch_add_term(terms, KFP_TERM_DIRICHLET, xb, gb, 2, 1.0) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_loss(net, op, batch, &plain, NULL, NULL) == KFP_OK && kfp_loss(net, op, terms, &same, NULL, NULL) == KFP_OK &&
               same == plain, "term by term %.17g, plain %.17g", same, plain);
    EXPECT(kfp_batch_add_term(terms, KFP_TERM_OBSERVATION, xb, yo, 2, 4.0) == KFP_OK &&
               kfp_loss(net, op, terms, &with_data, NULL, NULL) == KFP_OK && kfp_net_eval(net, xb, 2, 2, u_obs) == KFP_OK,
           "%s", kfp_last_error());
    double data = 4.0 / 4 * ((u_obs[0] - yo[0]) * (u_obs[0] - yo[0]) + (u_obs[1] - yo[1]) * (u_obs[1] - yo[1]));
    EXPECT(fabs(with_data - plain - data) < 1e-14, "observation term %g, expected %g", with_data - plain, data);
    int64_t count = 0, points = 0;
    int32_t kind = -1;
    double weight = 0, y_back[2];
    EXPECT(kfp_batch_num_terms(terms, &count) == KFP_OK && count == 3 &&
               kfp_batch_term(terms, 2, &kind, &points, &weight, NULL, y_back) == KFP_OK && kind == KFP_TERM_OBSERVATION &&
               points == 2 && weight == 4.0 && y_back[1] == yo[1], "term 2: kind %d, %lld points, weight %g", kind,
           (long long)points, weight);
    const double nan_values[] = {0.1, NAN};
    EXPECT_ERROR(kfp_batch_add_term(terms, KFP_TERM_OBSERVATION, xb, nan_values, 2, 1.0), KFP_ERROR_NON_FINITE,
                 "term 3 (observation) observations y");
    EXPECT_ERROR(kfp_batch_add_term(terms, KFP_TERM_DIRICHLET, xb, gb, 2, -1.0), KFP_ERROR_INVALID_ARGUMENT, "weight");
    EXPECT_ERROR(kfp_batch_add_term(terms, (kfp_term_kind)7, xb, gb, 2, 1.0), KFP_ERROR_INVALID_ARGUMENT, "unknown term kind 7");
    EXPECT_ERROR(kfp_batch_term(terms, 3, &kind, NULL, NULL, NULL, NULL), KFP_ERROR_INVALID_ARGUMENT, "out of range");
    EXPECT(kfp_batch_num_terms(terms, &count) == KFP_OK && count == 3, "a failed add changed the batch: %lld terms",
           (long long)count);
    /* Neumann and Robin terms: normals required and of unit length; a = b = 0 refused; read back. */
    const double normals[] = {0.6, 0.8, -1.0, 0.0}, bad_normals[] = {0.6, 0.8, 2.0, 0.0}, ra[] = {1.0, 0.0}, rb[] = {0.5, 2.0};
    double normals_back[4] = {0}, rb_back[2] = {0};
    EXPECT(kfp_batch_add_neumann(terms, xb, gb, normals, 2, 1.0) == KFP_OK &&
               kfp_batch_add_robin(terms, xb, gb, normals, ra, rb, 2, 0.5) == KFP_OK &&
               kfp_batch_term_normals(terms, 4, normals_back, NULL, rb_back) == KFP_OK && normals_back[2] == -1.0 &&
               rb_back[1] == 2.0 && kfp_loss(net, op, terms, &with_data, NULL, NULL) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_batch_add_term(terms, KFP_TERM_NEUMANN, xb, gb, 2, 1.0), KFP_ERROR_INVALID_ARGUMENT,
                 "kfp_batch_add_neumann");
    EXPECT_ERROR(kfp_batch_add_neumann(terms, xb, gb, NULL, 2, 1.0), KFP_ERROR_NULL_POINTER, "normals");
    EXPECT_ERROR(kfp_batch_add_neumann(terms, xb, gb, bad_normals, 2, 1.0), KFP_ERROR_INVALID_ARGUMENT,
                 "term 5 (neumann): the normal of point 1 has length 2");
    const double zero[] = {0.0, 0.0}, b_first[] = {0.5, 0.0};
    EXPECT_ERROR(kfp_batch_add_robin(terms, xb, gb, normals, zero, b_first, 2, 1.0), KFP_ERROR_INVALID_ARGUMENT,
                 "a = b = 0 at point 1");
    EXPECT(kfp_batch_num_terms(terms, &count) == KFP_OK && count == 5, "%lld terms after the failures", (long long)count);
    kfp_batch_free(terms);
    terms = NULL;
    EXPECT(kfp_batch_create_empty(2, &terms) == KFP_OK &&
               kfp_batch_add_term(terms, KFP_TERM_OBSERVATION, xb, yo, 2, 1.0) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_loss(net, op, terms, &same, NULL, NULL), KFP_ERROR_INVALID_ARGUMENT, "no interior point");
    kfp_batch_free(terms);

    /* Residual r = -lap u - f. */
    double r[3], lap[3];
    EXPECT(kfp_operator_residual(op, net, xi, 3, 2, fi, r) == KFP_OK, "%s", kfp_last_error());
    kfp_net_derivatives(net, xi, 3, 2, NULL, NULL, NULL, lap);
    for (int k = 0; k < 3; k++) EXPECT(fabs(r[k] + lap[k] + fi[k]) < 1e-14, "residual %d", k);

    /* Loss and gradient against finite differences of kfp_loss. */
    double loss, li, lb, grad[33], theta[33];
    EXPECT(kfp_loss(net, op, batch, &loss, &li, &lb) == KFP_OK && fabs(loss - li - lb) < 1e-15, "%s", kfp_last_error());
    double ref_li = 0;
    for (int k = 0; k < 3; k++) ref_li += r[k] * r[k] / 6;
    EXPECT(fabs(li - ref_li) < 1e-13, "interior loss %g, from residuals %g", li, ref_li);
    EXPECT(kfp_loss_and_gradient(net, op, batch, &loss, grad, 33) == KFP_OK, "%s", kfp_last_error());
    kfp_net_get_params(net, theta, 33);
    double worst = 0;
    for (int i = 0; i < 33; i++) {
        double p[33], lp, lm;
        memcpy(p, theta, sizeof p);
        p[i] += 1e-6; kfp_net_set_params(net, p, 33); kfp_loss(net, op, batch, &lp, NULL, NULL);
        p[i] -= 2e-6; kfp_net_set_params(net, p, 33); kfp_loss(net, op, batch, &lm, NULL, NULL);
        worst = fmax(worst, fabs((lp - lm) / 2e-6 - grad[i]) / fmax(1, fabs(grad[i])));
    }
    kfp_net_set_params(net, theta, 33);
    EXPECT(worst < 1e-7, "gradient vs finite differences: %g", worst);

    /* Other operators construct and evaluate. */
    const double C[4] = {1, 0.2, 0.2, 0.5}, beta[2] = {0.3, -0.1};
    EXPECT(kfp_operator_create_heat(1, 0.25, &heat) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_linear(2, C, beta, NULL, -1.0, NULL, &lin) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_log_fokker_planck(1, &fp) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_loss_and_gradient(net, heat, batch, &loss, grad, 33) == KFP_OK, "heat: %s", kfp_last_error());
    EXPECT(kfp_loss_and_gradient(net, lin, batch, &loss, grad, 33) == KFP_OK, "linear: %s", kfp_last_error());
    EXPECT(kfp_loss_and_gradient(net, fp, batch, &loss, grad, 33) == KFP_OK, "log-FP: %s", kfp_last_error());

    /* Bad input. */
    const double nanf[] = {1, NAN, 3};
    EXPECT_ERROR(kfp_batch_create(xi, nanf, 3, xb, gb, 2, 2, &bad), KFP_ERROR_NON_FINITE, "source f");
    EXPECT(bad == NULL, "out set on failure");
    EXPECT_ERROR(kfp_batch_create(xi, fi, 0, xb, gb, 2, 2, &bad), KFP_ERROR_INVALID_ARGUMENT, "num_interior");
    EXPECT_ERROR(kfp_batch_create(xi, fi, 3, NULL, gb, 2, 2, &bad), KFP_ERROR_NULL_POINTER, "x_boundary is NULL");
    EXPECT_ERROR(kfp_batch_create(xi, fi, 3, xb, gb, -1, 2, &bad), KFP_ERROR_INVALID_ARGUMENT, "num_boundary");
    EXPECT(kfp_batch_create(xi, fi, 2, NULL, NULL, 0, 3, &batch3) == KFP_OK, "no boundary points: %s", kfp_last_error());
    EXPECT_ERROR(kfp_operator_create_poisson(0, &bad_op), KFP_ERROR_INVALID_ARGUMENT, "dim");
    EXPECT_ERROR(kfp_operator_create_heat(1, -1.0, &bad_op), KFP_ERROR_INVALID_ARGUMENT, "kappa");
    EXPECT_ERROR(kfp_operator_create_heat(1, NAN, &bad_op), KFP_ERROR_INVALID_ARGUMENT, "kappa");
    EXPECT_ERROR(kfp_operator_create_linear(2, NULL, NULL, NULL, 0, NULL, &bad_op), KFP_ERROR_NULL_POINTER, "C is NULL");
    EXPECT_ERROR(kfp_operator_create_linear(2, C, NULL, NULL, INFINITY, NULL, &bad_op), KFP_ERROR_NON_FINITE, "reaction");
    EXPECT(bad_op == NULL, "out set on failure");
    EXPECT_ERROR(kfp_loss(net, op3, batch, &loss, NULL, NULL), KFP_ERROR_DIMENSION_MISMATCH, "operator is 3-dimensional");
    EXPECT_ERROR(kfp_loss(net, op, batch3, &loss, NULL, NULL), KFP_ERROR_DIMENSION_MISMATCH, "batch has 3-dimensional");
    EXPECT_ERROR(kfp_loss(net, op, NULL, &loss, NULL, NULL), KFP_ERROR_NULL_POINTER, "batch is NULL");
    EXPECT_ERROR(kfp_loss(net, (kfp_operator *)batch, batch, &loss, NULL, NULL), KFP_ERROR_WRONG_HANDLE, "op is not a kfp_operator");
    double before[33];
    memcpy(before, grad, sizeof before);
    EXPECT_ERROR(kfp_loss_and_gradient(net, op, batch, &loss, grad, 32), KFP_ERROR_DIMENSION_MISMATCH, "num_params");
    EXPECT_ERROR(kfp_loss_and_gradient(net, op, batch, &loss, NULL, 33), KFP_ERROR_NULL_POINTER, "grad is NULL");
    EXPECT(max_abs_diff(before, grad, 33) == 0, "grad changed by failed calls");
    EXPECT_ERROR(kfp_operator_residual(op, net, xi, 3, 2, nanf, r), KFP_ERROR_NON_FINITE, "source f");

    kfp_batch_free(batch3); kfp_batch_free(batch); kfp_batch_free(NULL);
    kfp_operator_free(fp); kfp_operator_free(lin); kfp_operator_free(heat);
    kfp_operator_free(op3); kfp_operator_free(op); kfp_operator_free(NULL);
    kfp_net_free(net);
}

static void test_optimizer(void) {
    const int64_t widths[] = {2, 8, 1}, widths3[] = {3, 4, 1};
    kfp_net *net = NULL, *other = NULL;
    kfp_operator *op = NULL, *op3 = NULL;
    kfp_batch *batch = NULL, *batch3 = NULL;
    kfp_optimizer *opt = NULL, *bad = (kfp_optimizer *)(void *)&net;
    EXPECT(kfp_net_create(widths, 3, NULL, NULL, 4, &net) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_net_create(widths3, 3, NULL, NULL, 4, &other) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_poisson(2, &op) == KFP_OK && kfp_operator_create_poisson(3, &op3) == KFP_OK, "ops");
    double xi[40], fi[20], xb[16], gb[8], x3[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, f3[2] = {1, 1};
    for (int k = 0; k < 20; k++) { xi[2 * k] = (k % 5 + 0.5) / 5; xi[2 * k + 1] = (k / 5 + 0.5) / 4; fi[k] = 1; }
    for (int k = 0; k < 8; k++) { xb[2 * k] = k % 2; xb[2 * k + 1] = k / 8.0; gb[k] = 0; }
    EXPECT(kfp_batch_create(xi, fi, 20, xb, gb, 8, 2, &batch) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_batch_create(x3, f3, 2, NULL, NULL, 0, 3, &batch3) == KFP_OK, "%s", kfp_last_error());

    EXPECT_ERROR(kfp_optimizer_create_kfac(NULL, op, &bad), KFP_ERROR_NULL_POINTER, "net is NULL");
    EXPECT(bad == NULL, "out set on failure");
    EXPECT_ERROR(kfp_optimizer_create_kfac(net, op3, &bad), KFP_ERROR_DIMENSION_MISMATCH, "3-dimensional");
    EXPECT(kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK, "%s", kfp_last_error());

    /* Options: out-of-range values, unknown keys and keys of another type are rejected. */
    double v = 0;
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 0.0), KFP_ERROR_INVALID_ARGUMENT, "damping must be positive");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, NAN), KFP_ERROR_INVALID_ARGUMENT, "damping");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 1.0), KFP_ERROR_INVALID_ARGUMENT, "ema must be in [0, 1)");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, 99, 1.0), KFP_ERROR_INVALID_ARGUMENT, "unknown option key 99");
    EXPECT_ERROR(kfp_optimizer_set_int(opt, KFP_OPT_DAMPING, 1), KFP_ERROR_INVALID_ARGUMENT, "takes a double");
    EXPECT_ERROR(kfp_optimizer_set_int(opt, KFP_OPT_FACTOR_PERIOD, 0), KFP_ERROR_INVALID_ARGUMENT, "factor_period");
    EXPECT_ERROR(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "newton"), KFP_ERROR_INVALID_ARGUMENT, "unknown step rule");
    EXPECT_ERROR(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, NULL), KFP_ERROR_NULL_POINTER, "value is NULL");
    EXPECT(kfp_optimizer_get_double(opt, KFP_OPT_DAMPING, &v) == KFP_OK && v == 1e-10, "damping %g", v);
    EXPECT(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1e-8) == KFP_OK &&
               kfp_optimizer_get_double(opt, KFP_OPT_DAMPING, &v) == KFP_OK && v == 1e-8, "damping %g", v);

    /* Steps lower the loss. */
    double stats[KFP_STAT_COUNT], first = 0;
    for (int i = 0; i < 20; i++) {
        EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
        if (i == 0) first = stats[KFP_STAT_LOSS];
    }
    EXPECT(stats[KFP_STAT_LOSS] < 0.1 * first, "loss %g -> %g", first, stats[KFP_STAT_LOSS]);
    EXPECT(fabs(stats[KFP_STAT_LOSS] - stats[KFP_STAT_LOSS_INTERIOR] - stats[KFP_STAT_LOSS_BOUNDARY]) < 1e-15, "terms");

    /* Bad steps change nothing. */
    double theta[33], after[33];
    kfp_net_get_params(net, theta, 33);
    EXPECT_ERROR(kfp_optimizer_step(opt, other, batch, stats, KFP_STAT_COUNT), KFP_ERROR_INVALID_ARGUMENT, "not the network");
    EXPECT_ERROR(kfp_optimizer_step(opt, net, batch3, stats, KFP_STAT_COUNT), KFP_ERROR_DIMENSION_MISMATCH, "3-dimensional");
    EXPECT_ERROR(kfp_optimizer_step(opt, net, NULL, stats, KFP_STAT_COUNT), KFP_ERROR_NULL_POINTER, "batch is NULL");
    EXPECT_ERROR(kfp_optimizer_step((kfp_optimizer *)batch, net, batch, stats, 1), KFP_ERROR_WRONG_HANDLE, "not a kfp_optimizer");
    EXPECT_ERROR(kfp_optimizer_step(opt, net, batch, NULL, KFP_STAT_COUNT), KFP_ERROR_NULL_POINTER, "stats is NULL");
    EXPECT_ERROR(kfp_optimizer_step(opt, net, batch, stats, -1), KFP_ERROR_INVALID_ARGUMENT, "num_stats");
    /* A source so large that the residual's square overflows: the loss is not finite. */
    kfp_batch *huge = NULL;
    double fhuge[20];
    for (int k = 0; k < 20; k++) fhuge[k] = 1e200;
    EXPECT(kfp_batch_create(xi, fhuge, 20, xb, gb, 8, 2, &huge) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_step(opt, net, huge, NULL, 0), KFP_ERROR_NON_FINITE, "the loss is not finite");
    kfp_net_get_params(net, after, 33);
    EXPECT(max_abs_diff(theta, after, 33) == 0, "parameters changed by failed steps");
    /* KFAC* through the ABI. */
    EXPECT(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto") == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK && stats[KFP_STAT_ACCEPTED] == 1,
           "%s", kfp_last_error());
    /* Steps run OpenBLAS on the calling thread and give it the library's count back, also after a
     * failed step. */
    int (*openblas_threads)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    EXPECT(openblas_threads != NULL, "openblas_get_num_threads not found");
    EXPECT(kfp_set_num_threads(2) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "line_search") == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_step(opt, net, huge, NULL, 0), KFP_ERROR_NON_FINITE, "the loss is not finite");
    EXPECT(openblas_threads && openblas_threads() == 2, "OpenBLAS threads after the steps: %d",
           openblas_threads ? openblas_threads() : -1);
    EXPECT(kfp_set_num_threads(1) == KFP_OK, "%s", kfp_last_error());

    kfp_optimizer_free(opt);
    kfp_optimizer_free(NULL);
    kfp_batch_free(huge); kfp_batch_free(batch3); kfp_batch_free(batch);
    kfp_operator_free(op3); kfp_operator_free(op);
    kfp_net_free(other); kfp_net_free(net);
}

/* Creation with bad arguments, a rejected option key, and 30 steps on a fresh 2 -> 8 -> 1
 * network that must bring the loss below min_ratio times its first value. */
typedef kfp_status (*create_fn)(kfp_net *, kfp_operator *, kfp_optimizer **);

static void test_baseline(const char *name, create_fn create, double min_ratio) {
    const int64_t widths[] = {2, 8, 1};
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL, *bad = (kfp_optimizer *)(void *)&net;
    double xi[60], fi[30], xb[20], gb[10], stats[KFP_STAT_COUNT], first = 0;
    for (int k = 0; k < 30; k++) {
        xi[2 * k] = (k % 6 + 0.5) / 6; xi[2 * k + 1] = (k / 6 + 0.5) / 5;
        fi[k] = 2 * 9.8696044010893586 * sin(3.14159265358979 * xi[2 * k]) * sin(3.14159265358979 * xi[2 * k + 1]);
    }
    for (int k = 0; k < 10; k++) { xb[2 * k] = k % 2; xb[2 * k + 1] = k / 10.0; gb[k] = 0; }
    EXPECT(kfp_net_create(widths, 3, NULL, NULL, 3, &net) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_poisson(2, &op) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_batch_create(xi, fi, 30, xb, gb, 10, 2, &batch) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(create(net, NULL, &bad), KFP_ERROR_NULL_POINTER, "op is NULL");
    EXPECT(bad == NULL, "%s: out set on failure", name);
    EXPECT_ERROR(create(net, op, NULL), KFP_ERROR_NULL_POINTER, "out_optimizer is NULL");
    EXPECT(create(net, op, &opt) == KFP_OK, "%s: %s", name, kfp_last_error());
    /* Keys of other optimizers are rejected by name. */
    EXPECT_ERROR(kfp_optimizer_set_string(opt, KFP_OPT_APPROXIMATION, "reduce"), KFP_ERROR_INVALID_ARGUMENT,
                 "does not apply");
    for (int i = 0; i < 30; i++) {
        EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s: %s", name, kfp_last_error());
        if (i == 0) first = stats[KFP_STAT_LOSS];
    }
    EXPECT(stats[KFP_STAT_LOSS] < min_ratio * first, "%s: loss %g -> %g", name, first, stats[KFP_STAT_LOSS]);
    kfp_optimizer_free(opt);
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_net_free(net);
}

static void test_baselines(void) {
    test_baseline("sgd", kfp_optimizer_create_sgd, 0.999);
    test_baseline("adam", kfp_optimizer_create_adam, 0.999);
    test_baseline("lbfgs", kfp_optimizer_create_lbfgs, 0.1);
    test_baseline("engd", kfp_optimizer_create_engd, 0.5);
    test_baseline("hessian_free", kfp_optimizer_create_hessian_free, 0.1);

    /* Options of each kind: range checks, integer and string options, get after set. */
    const int64_t widths[] = {2, 16, 16, 1};
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_optimizer *sgd = NULL, *adam = NULL, *lbfgs = NULL, *engd = NULL, *hf = NULL;
    kfp_batch *batch = NULL;
    double x[4] = {0.2, 0.3, 0.6, 0.7}, f[2] = {1, 2}, v = 0;
    int64_t n = 0;
    EXPECT(kfp_net_create(widths, 4, NULL, NULL, 1, &net) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_operator_create_poisson(2, &op) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_batch_create(x, f, 2, NULL, NULL, 0, 2, &batch) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_optimizer_create_sgd(net, op, &sgd) == KFP_OK && kfp_optimizer_create_adam(net, op, &adam) == KFP_OK &&
               kfp_optimizer_create_lbfgs(net, op, &lbfgs) == KFP_OK && kfp_optimizer_create_engd(net, op, &engd) == KFP_OK &&
               kfp_optimizer_create_hessian_free(net, op, &hf) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_set_double(sgd, KFP_OPT_LEARNING_RATE, -1), KFP_ERROR_INVALID_ARGUMENT, "learning rate");
    EXPECT_ERROR(kfp_optimizer_set_int(sgd, KFP_OPT_NESTEROV, 2), KFP_ERROR_INVALID_ARGUMENT, "0 or 1");
    EXPECT(kfp_optimizer_set_int(sgd, KFP_OPT_NESTEROV, 1) == KFP_OK &&
               kfp_optimizer_get_int(sgd, KFP_OPT_NESTEROV, &n) == KFP_OK && n == 1, "nesterov %lld", (long long)n);
    EXPECT_ERROR(kfp_optimizer_set_double(adam, KFP_OPT_BETA1, 1.0), KFP_ERROR_INVALID_ARGUMENT, "beta1 must be in [0, 1)");
    EXPECT_ERROR(kfp_optimizer_set_double(adam, KFP_OPT_BETA2, -0.5), KFP_ERROR_INVALID_ARGUMENT, "beta2");
    EXPECT(kfp_optimizer_get_double(adam, KFP_OPT_BETA2, &v) == KFP_OK && v == 0.999, "beta2 %g", v);
    EXPECT_ERROR(kfp_optimizer_set_int(lbfgs, KFP_OPT_HISTORY, 0), KFP_ERROR_INVALID_ARGUMENT, "history must be at least 1");
    EXPECT(kfp_optimizer_set_int(lbfgs, KFP_OPT_HISTORY, 150) == KFP_OK &&
               kfp_optimizer_get_int(lbfgs, KFP_OPT_HISTORY, &n) == KFP_OK && n == 150, "history %lld", (long long)n);
    EXPECT_ERROR(kfp_optimizer_set_string(engd, KFP_OPT_VARIANT, "dense"), KFP_ERROR_INVALID_ARGUMENT, "unknown ENGD variant");
    EXPECT_ERROR(kfp_optimizer_set_string(engd, KFP_OPT_STEP_RULE, "auto"), KFP_ERROR_INVALID_ARGUMENT, "unknown step rule");
    /* The full Gramian of this 337-parameter network is refused above max_parameters; woodbury needs none. */
    EXPECT(kfp_optimizer_set_int(engd, KFP_OPT_MAX_PARAMETERS, 300) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_step(engd, net, batch, NULL, 0), KFP_ERROR_INVALID_ARGUMENT, "337 × 337 Gramian");
    EXPECT(kfp_optimizer_set_string(engd, KFP_OPT_VARIANT, "woodbury") == KFP_OK &&
               kfp_optimizer_step(engd, net, batch, NULL, 0) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_set_double(engd, KFP_OPT_EMA, 0.5), KFP_ERROR_INVALID_ARGUMENT, "woodbury");
    EXPECT_ERROR(kfp_optimizer_set_int(hf, KFP_OPT_MAX_CG_ITERATIONS, 0), KFP_ERROR_INVALID_ARGUMENT, "max_cg_iterations");
    EXPECT(kfp_optimizer_set_double(hf, KFP_OPT_DAMPING, 500) == KFP_OK &&
               kfp_optimizer_get_double(hf, KFP_OPT_DAMPING, &v) == KFP_OK && v == 500, "damping %g", v);

    /* Introspection, on new optimizers: each lists its keys; every listed key reads back its
     * default with its type, the default lies in the range, a string default is a choice. */
    kfp_status (*create[])(kfp_net *, kfp_operator *, kfp_optimizer **) = {
        kfp_optimizer_create_sgd, kfp_optimizer_create_adam, kfp_optimizer_create_lbfgs, kfp_optimizer_create_engd,
        kfp_optimizer_create_hessian_free, kfp_optimizer_create_kfac, kfp_optimizer_create_spring};
    kfp_optimizer *all[7] = {NULL};
    const int64_t counts[] = {4, 5, 4, 8, 3, 12, 8};   /* each with divergence_factor */
    for (int k = 0; k < 7; k++) {
        EXPECT(create[k](net, op, &all[k]) == KFP_OK, "%s", kfp_last_error());
        int64_t count = -1;
        EXPECT(kfp_optimizer_option_count(all[k], &count) == KFP_OK && count == counts[k], "optimizer %d: %lld options",
               k, (long long)count);
        for (int64_t i = 0; i < count; i++) {
            kfp_option_info info;
            info.size = sizeof info;
            EXPECT(kfp_optimizer_option_info(all[k], i, &info) == KFP_OK, "%s", kfp_last_error());
            double dv = 0;
            int64_t iv = 0, len = 0;
            char text[64];
            switch (info.type) {
            case KFP_OPTION_DOUBLE:
                EXPECT(kfp_optimizer_get_double(all[k], info.key, &dv) == KFP_OK && dv == info.default_double &&
                           (info.minimum_exclusive ? dv > info.minimum : dv >= info.minimum) &&
                           (info.maximum_exclusive ? dv < info.maximum : dv <= info.maximum),
                       "%s: %g against default %g in [%g, %g]", info.name, dv, info.default_double, info.minimum, info.maximum);
                break;
            case KFP_OPTION_INT:
                EXPECT(kfp_optimizer_get_int(all[k], info.key, &iv) == KFP_OK && iv == info.default_int &&
                           iv >= info.minimum && iv <= info.maximum, "%s: %lld, default %lld", info.name, (long long)iv,
                       (long long)info.default_int);
                break;
            case KFP_OPTION_STRING:
                EXPECT(kfp_optimizer_get_string(all[k], info.key, text, sizeof text, &len) == KFP_OK &&
                           len == (int64_t)strlen(text) && strcmp(text, info.default_string) == 0 &&
                           strstr(info.choices, text) != NULL,
                       "%s: '%s' among '%s'", info.name, text, info.choices);
                break;
            default:
                EXPECT(0, "%s: type %d", info.name, info.type);
            }
            EXPECT(strlen(info.name) > 0 && strlen(info.description) > 0, "option %d of optimizer %d", info.key, k);
        }
        kfp_option_info info;
        info.size = sizeof info;
        EXPECT_ERROR(kfp_optimizer_option_info(all[k], count, &info), KFP_ERROR_INVALID_ARGUMENT, "out of range");
        info.size = 8;
        EXPECT_ERROR(kfp_optimizer_option_info(all[k], 0, &info), KFP_ERROR_INVALID_ARGUMENT, "sizeof(kfp_option_info)");
        kfp_optimizer_free(all[k]);
    }
    char rule[8];
    int64_t length = 0;
    EXPECT(kfp_optimizer_get_string(engd, KFP_OPT_STEP_RULE, rule, sizeof rule, &length) == KFP_OK && length == 11 &&
               strcmp(rule, "line_se") == 0, "truncated '%s', length %lld", rule, (long long)length);
    EXPECT(kfp_optimizer_get_string(engd, KFP_OPT_STEP_RULE, NULL, 0, &length) == KFP_OK && length == 11, "length only");
    EXPECT_ERROR(kfp_optimizer_get_string(engd, KFP_OPT_DAMPING, rule, sizeof rule, NULL), KFP_ERROR_INVALID_ARGUMENT,
                 "takes a string");
    EXPECT_ERROR(kfp_optimizer_get_string(engd, KFP_OPT_STEP_RULE, NULL, 4, NULL), KFP_ERROR_NULL_POINTER, "buffer");
    EXPECT_ERROR(kfp_optimizer_set_double(sgd, 5, 1.0), KFP_ERROR_INVALID_ARGUMENT, "unknown option key 5");

    kfp_optimizer_free(sgd); kfp_optimizer_free(adam); kfp_optimizer_free(lbfgs);
    kfp_optimizer_free(engd); kfp_optimizer_free(hf);
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_net_free(net);
}

static int32_t count_records(const double *record, int64_t count, void *user_data) {
    int *seen = user_data;
    (*seen)++;
    return count == KFP_LOG_COUNT && record[KFP_LOG_STEP] >= 4 ? 1 : 0;   /* stop at step 4 */
}

static int32_t keep_losses(const double *record, int64_t count, void *user_data) {
    double *losses = user_data;
    (void)count;
    losses[record[KFP_LOG_STEP] == 0 ? 0 : 1] = record[KFP_LOG_LOSS];
    return 0;
}

/* Functions of points for problems of your own: a constant 1, u = x0 + x1, and a NaN. */
static void one(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    (void)user_data; (void)x; (void)dim;
    for (int64_t k = 0; k < num_points; k++) out[k] = 1.0;
}

static void plane(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    int *calls = user_data;
    if (calls) (*calls)++;
    for (int64_t k = 0; k < num_points; k++) out[k] = x[k * dim] + x[k * dim + 1];
}

static void not_a_number(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    (void)user_data; (void)x; (void)dim;
    for (int64_t k = 0; k < num_points; k++) out[k] = k == 2 ? NAN : 0.0;
}

/* kfp_train's options: the defaults with the given fields (a pointer to static storage). */
static const kfp_train_options *train_options(int64_t steps, double seconds, int64_t num_interior, int64_t num_boundary,
                                              const char *sampler, int64_t resample_every, int64_t log_every,
                                              const char *csv_path, kfp_train_callback callback, void *user_data) {
    static kfp_train_options o;
    if (kfp_train_default_options(&o) != KFP_OK) return NULL;
    o.steps = steps; o.seconds = seconds; o.num_interior = num_interior; o.num_boundary = num_boundary;
    o.sampler = sampler; o.resample_every = resample_every; o.log_every = log_every; o.csv_path = csv_path;
    o.callback = callback; o.user_data = user_data;
    return &o;
}

static void test_problems(void) {
    kfp_problem *problem = NULL, *bad = (kfp_problem *)(void *)&problem;
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL;
    int64_t d = 0, widths[8], count = 0, n = 0, m = 0, taken = 0;
    EXPECT_ERROR(kfp_problem_create("poisson3d", &bad), KFP_ERROR_INVALID_ARGUMENT, "unknown problem 'poisson3d'");
    EXPECT(bad == NULL, "out set on failure");
    EXPECT_ERROR(kfp_problem_create(NULL, &problem), KFP_ERROR_NULL_POINTER, "name is NULL");
    EXPECT(kfp_problem_create("heat1d", &problem) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_problem_dim(problem, &d) == KFP_OK && d == 2, "dim %lld", (long long)d);
    EXPECT_ERROR(kfp_problem_network_widths(problem, "huge", widths, 8, &count), KFP_ERROR_INVALID_ARGUMENT, "no huge network");
    EXPECT_ERROR(kfp_problem_network_widths(problem, "medium", widths, 3, &count), KFP_ERROR_INVALID_ARGUMENT, "capacity");
    EXPECT(kfp_problem_network_widths(problem, "small", widths, 8, &count) == KFP_OK && count == 3 && widths[1] == 64,
           "%s", kfp_last_error());
    EXPECT(kfp_problem_sample(problem, 0, -1, 5, NULL, &batch) == KFP_OK && kfp_batch_sizes(batch, &n, &m, NULL) == KFP_OK &&
               n == 900 && m == 120, "default sizes %lld/%lld", (long long)n, (long long)m);
    kfp_batch_free(batch);
    EXPECT_ERROR(kfp_problem_sample(problem, -3, 10, 5, NULL, &batch), KFP_ERROR_INVALID_ARGUMENT, "num_interior");
    EXPECT_ERROR(kfp_problem_sample(problem, 3, 10, 5, "halton", &batch), KFP_ERROR_INVALID_ARGUMENT, "unknown sampler 'halton'");
    EXPECT(kfp_problem_sample(problem, 30, 10, 5, "sobol", &batch) == KFP_OK, "%s", kfp_last_error());
    double xi[60], fi[30], xb[20], gb[10], g[10];
    EXPECT(kfp_batch_data(batch, xi, fi, xb, gb) == KFP_OK && kfp_problem_exact(problem, xb, 10, 2, g) == KFP_OK &&
               max_abs_diff(g, gb, 10) == 0, "g = u* on the condition points");
    EXPECT_ERROR(kfp_problem_exact(problem, xb, 10, 3, g), KFP_ERROR_DIMENSION_MISMATCH, "dim is 3");
    kfp_batch_free(batch);

    EXPECT(kfp_net_create(widths, count, NULL, NULL, 2, &net) == KFP_OK && kfp_problem_operator(problem, &op) == KFP_OK &&
               kfp_optimizer_create_adam(net, op, &opt) == KFP_OK, "%s", kfp_last_error());
    double l2 = 0, rel = 0;
    EXPECT(kfp_problem_errors(problem, net, 500, 1, &l2, &rel) == KFP_OK && l2 > 0 && rel > 0, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_problem_errors(problem, net, -1, 1, &l2, NULL), KFP_ERROR_INVALID_ARGUMENT, "num_eval");
    int seen = 0;
    EXPECT(kfp_train(opt, net, problem, train_options(100, 0, 40, 10, NULL, 2, 2, NULL, count_records, &seen), &taken) == KFP_OK &&
               taken == 4 && seen == 4, "taken %lld, records %d: %s", (long long)taken, seen, kfp_last_error());
    EXPECT_ERROR(kfp_train(opt, net, problem, train_options(0, 0, 40, 10, NULL, 0, 1, NULL, NULL, NULL), NULL), KFP_ERROR_INVALID_ARGUMENT,
                 "steps must be at least 1");
    EXPECT_ERROR(kfp_train(opt, net, problem, train_options(5, 0, 40, 10, NULL, 0, 1, "/nonexistent/dir/log.csv", NULL, NULL), NULL),
                 KFP_ERROR_INVALID_ARGUMENT, "cannot write the log");
    EXPECT_ERROR(kfp_train(opt, net, NULL, train_options(5, 0, 40, 10, NULL, 0, 1, NULL, NULL, NULL), NULL), KFP_ERROR_NULL_POINTER,
                 "problem is NULL");
    EXPECT_ERROR(kfp_train(opt, net, problem, train_options(5, NAN, 40, 10, NULL, 0, 1, NULL, NULL, NULL), NULL), KFP_ERROR_INVALID_ARGUMENT,
                 "seconds is NaN");
    kfp_train_options sized;
    EXPECT(kfp_train_default_options(&sized) == KFP_OK && sized.size == (int64_t)sizeof sized && sized.steps == 1000 &&
               sized.num_boundary == -1 && sized.log_every == 100 && sized.callback == NULL, "defaults");
    sized.size = 16;
    EXPECT_ERROR(kfp_train(opt, net, problem, &sized, NULL), KFP_ERROR_INVALID_ARGUMENT, "options->size is 16");
    EXPECT_ERROR(kfp_train(opt, net, problem, NULL, NULL), KFP_ERROR_NULL_POINTER, "options is NULL");
    EXPECT_ERROR(kfp_train_default_options(NULL), KFP_ERROR_NULL_POINTER, "out_options is NULL");
    kfp_optimizer_free(opt);
    kfp_operator_free(op);
    kfp_net_free(net);
    kfp_problem_free(problem);
    kfp_problem_free(NULL);

    /* A problem of your own: -lap u = 0 on [0,1] x [0,2], u* = x0 + x1 (harmonic): Dirichlet on
     * x0- and x0+, Neumann du/dn = -1 on x1-, Robin u + du/dn = u* + 1 on x1+. */
    {
        const double lower[] = {0, 0}, upper[] = {1, 2};
        kfp_operator *poisson = NULL;
        kfp_problem *own = NULL;
        int calls = 0;
        EXPECT(kfp_operator_create_poisson(2, &poisson) == KFP_OK, "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_create_box(poisson, lower, upper, 2, NULL, NULL, &own), KFP_ERROR_NULL_POINTER, "source is NULL");
        EXPECT(kfp_problem_create_box(poisson, lower, upper, 2, not_a_number, NULL, &own) == KFP_OK &&
                   kfp_problem_add_condition(own, "all", KFP_TERM_DIRICHLET, plane, &calls, 0, 0) == KFP_OK,
               "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_sample(own, 10, 4, 0, NULL, &batch), KFP_ERROR_NON_FINITE, "the source f is nan at point 2");
        kfp_problem_free(own);
        own = NULL;
        EXPECT(kfp_problem_create_box(poisson, lower, upper, 2, one, NULL, &own) == KFP_OK &&
                   kfp_problem_add_condition(own, "x0-,x0+", KFP_TERM_DIRICHLET, plane, &calls, 0, 0) == KFP_OK &&
                   kfp_problem_add_condition(own, "x1+", KFP_TERM_ROBIN, plane, NULL, 1.0, 1.0) == KFP_OK,
               "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_add_condition(own, "x1+", KFP_TERM_NEUMANN, plane, NULL, 0, 0), KFP_ERROR_INVALID_ARGUMENT,
                     "face 'x1+' is given two conditions");
        EXPECT_ERROR(kfp_problem_add_condition(own, "x3-", KFP_TERM_NEUMANN, plane, NULL, 0, 0), KFP_ERROR_INVALID_ARGUMENT,
                     "unknown face 'x3-'");
        EXPECT_ERROR(kfp_problem_add_condition(own, "x1-", KFP_TERM_OBSERVATION, plane, NULL, 0, 0), KFP_ERROR_INVALID_ARGUMENT,
                     "KFP_TERM_DIRICHLET");
        double point[2] = {0.5, 0.5}, u_star = 0;
        EXPECT_ERROR(kfp_problem_exact(own, point, 1, 2, &u_star), KFP_ERROR_INVALID_ARGUMENT, "no exact solution");
        kfp_batch *counted = NULL;
        int64_t counted_terms = 0, counted_points = 0;
        EXPECT(kfp_problem_set_condition_points(own, 1, 9) == KFP_OK && kfp_problem_sample(own, 5, 20, 0, NULL, &counted) == KFP_OK &&
                   kfp_batch_num_terms(counted, &counted_terms) == KFP_OK && counted_terms == 3 &&
                   kfp_batch_term(counted, 2, NULL, &counted_points, NULL, NULL, NULL) == KFP_OK && counted_points == 9,
               "Robin term with %lld points: %s", (long long)counted_points, kfp_last_error());
        kfp_batch_free(counted);
        EXPECT_ERROR(kfp_problem_set_condition_points(own, 5, 9), KFP_ERROR_INVALID_ARGUMENT, "condition index 5 out of range");
        EXPECT_ERROR(kfp_problem_set_condition_points(own, 0, -2), KFP_ERROR_INVALID_ARGUMENT, "num_points");
        EXPECT(kfp_problem_add_condition(own, "all", KFP_TERM_NEUMANN, not_a_number, NULL, 0, 0) == KFP_OK &&
                   kfp_problem_set_sizes(own, 40, 30) == KFP_OK, "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_sample(own, 0, -1, 0, NULL, &batch), KFP_ERROR_NON_FINITE, "condition 2 (x1-)");
        EXPECT_ERROR(kfp_problem_add_condition(NULL, "x1-", KFP_TERM_NEUMANN, plane, NULL, 0, 0), KFP_ERROR_NULL_POINTER,
                     "problem is NULL");
        kfp_problem_free(own);
        own = NULL;
        EXPECT_ERROR(kfp_problem_create_ball(poisson, lower, -1.0, 2, one, NULL, &own), KFP_ERROR_INVALID_ARGUMENT, "radius");
        /* Points of your own: every batch is the given one. */
        kfp_batch *given = NULL, *again = NULL;
        const double px[] = {0.1, 0.2, 0.3, 0.4}, pf[] = {1, 2}, pb[] = {0.0, 0.0}, pg[] = {0.5};
        int64_t gi = 0, gb = 0;
        EXPECT(kfp_batch_create(px, pf, 2, pb, pg, 1, 2, &given) == KFP_OK && kfp_problem_create_points(poisson, given, &own) == KFP_OK &&
                   kfp_problem_sample(own, 100, 50, 3, NULL, &again) == KFP_OK &&
                   kfp_batch_sizes(again, &gi, &gb, NULL) == KFP_OK && gi == 2 && gb == 1, "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_add_condition(own, "all", KFP_TERM_DIRICHLET, plane, NULL, 0, 0), KFP_ERROR_INVALID_ARGUMENT,
                     "add terms to the batch");
        kfp_batch_free(again); kfp_batch_free(given); kfp_problem_free(own);
        own = NULL;
        problem = NULL;
        EXPECT(kfp_problem_create("heat1d", &problem) == KFP_OK, "%s", kfp_last_error());
        EXPECT_ERROR(kfp_problem_set_exact(problem, plane, NULL), KFP_ERROR_INVALID_ARGUMENT, "built in");
        kfp_problem_free(problem);
        EXPECT(calls > 0, "the Dirichlet function was called %d times", calls);
        kfp_operator_free(poisson);
    }

    /* Every built-in problem trains end to end: 3 KFAC steps of a small network, loss falls. */
    const char *names[] = {"poisson2d_sin", "poisson5d_cos", "poisson10d_pairs", "poisson100d_sq",
                           "heat1d", "heat4d", "logfp9d"};
    for (int i = 0; i < 7; i++) {
        int64_t small[] = {0, 12, 1};
        problem = NULL; net = NULL; op = NULL; opt = NULL;
        EXPECT(kfp_problem_create(names[i], &problem) == KFP_OK && kfp_problem_dim(problem, &small[0]) == KFP_OK &&
                   kfp_net_create(small, 3, NULL, NULL, 1, &net) == KFP_OK &&
                   kfp_problem_operator(problem, &op) == KFP_OK && kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK,
               "%s: %s", names[i], kfp_last_error());
        double losses[2] = {0, 0};   /* loss of the first and the latest record */
        EXPECT(kfp_train(opt, net, problem, train_options(3, 0, 30, 12, "sobol", 0, 3, NULL, keep_losses, losses), &taken) == KFP_OK &&
                   taken == 3, "%s: %s", names[i], kfp_last_error());
        EXPECT(losses[1] < losses[0], "%s: loss %g -> %g", names[i], losses[0], losses[1]);
        EXPECT(kfp_problem_errors(problem, net, 100, 1, &l2, &rel) == KFP_OK && isfinite(l2) && isfinite(rel),
               "%s: %s", names[i], kfp_last_error());
        kfp_optimizer_free(opt);
        kfp_operator_free(op);
        kfp_net_free(net);
        kfp_problem_free(problem);
    }
}

/* Divergence: KFAC with a fixed step of 10 and damping 1e-14 (the loss grows by orders of magnitude
 * per step) fails with KFP_ERROR_DIVERGED, back before the step that produced the diverging
 * parameters: their loss is the one the last successful step started from. kfp_train reports
 * the same status and the steps that stand. */
static void test_divergence(void) {
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL;
    const int64_t widths[] = {2, 16, 16, 1};
    EXPECT(kfp_problem_create("poisson2d_sin", &problem) == KFP_OK && kfp_problem_operator(problem, &op) == KFP_OK &&
               kfp_problem_sample(problem, 60, 20, 1, NULL, &batch) == KFP_OK &&
               kfp_net_create(widths, 4, NULL, NULL, 1, &net) == KFP_OK && kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK,
           "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_DIVERGENCE_FACTOR, 1.0), KFP_ERROR_INVALID_ARGUMENT, "greater than 1");
    double factor = 0;
    EXPECT(kfp_optimizer_get_double(opt, KFP_OPT_DIVERGENCE_FACTOR, &factor) == KFP_OK && factor == 1e12, "factor %g", factor);
    EXPECT(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "fixed") == KFP_OK &&
               kfp_optimizer_set_double(opt, KFP_OPT_LEARNING_RATE, 10) == KFP_OK &&
               kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1e-14) == KFP_OK, "%s", kfp_last_error());
    double stats[KFP_STAT_COUNT], last_start = NAN, best = INFINITY;
    kfp_status status = KFP_OK;
    int steps = 0;
    for (; steps < 50 && (status = kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT)) == KFP_OK; steps++) {
        last_start = stats[KFP_STAT_LOSS];
        best = fmin(best, last_start);
    }
    EXPECT(status == KFP_ERROR_DIVERGED && strstr(kfp_last_error(), "back before the previous step") != NULL,
           "after %d steps: status %d, '%s'", steps, status, kfp_last_error());
    EXPECT(last_start <= 1e12 * best, "the last accepted step started at %g, the best was %g", last_start, best);
    double loss = NAN;
    EXPECT(kfp_loss(net, op, batch, &loss, NULL, NULL) == KFP_OK && loss == last_start,
           "loss %.17g after the rollback, the last step started at %.17g", loss, last_start);

    /* kfp_train: the same status; the steps that stand, fewer than those asked for. */
    kfp_net *fresh = NULL;
    kfp_optimizer *trained = NULL;
    int64_t taken = -1;
    EXPECT(kfp_net_create(widths, 4, NULL, NULL, 1, &fresh) == KFP_OK && kfp_optimizer_create_kfac(fresh, op, &trained) == KFP_OK &&
               kfp_optimizer_set_string(trained, KFP_OPT_STEP_RULE, "fixed") == KFP_OK &&
               kfp_optimizer_set_double(trained, KFP_OPT_LEARNING_RATE, 10) == KFP_OK &&
               kfp_optimizer_set_double(trained, KFP_OPT_DAMPING, 1e-14) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_train(trained, fresh, problem, train_options(50, 0, 60, 20, NULL, 0, 1, NULL, NULL, NULL), &taken),
                 KFP_ERROR_DIVERGED, "divergence_factor");
    EXPECT(taken >= 1 && taken < 49, "steps that stand: %lld", (long long)taken);
    kfp_optimizer_free(trained); kfp_net_free(fresh);
    kfp_optimizer_free(opt); kfp_net_free(net); kfp_batch_free(batch); kfp_operator_free(op); kfp_problem_free(problem);
}

/* Records the last record's count and its last value (a trained coefficient). */
struct last_record { int64_t count; double last; };
static int keep_last(const double *record, int64_t count, void *user_data) {
    struct last_record *r = user_data;
    r->count = count;
    r->last = record[count - 1];
    return 0;
}

static void test_inverse(void) {
    kfp_operator *op = NULL, *transport = NULL;
    EXPECT(kfp_operator_create_heat(1, 0.25, &op) == KFP_OK, "%s", kfp_last_error());
    /* Bad input: each refused with its reason, nothing marked. */
    EXPECT_ERROR(kfp_operator_set_trainable(op, "diffusivity", 1.0, 0), KFP_ERROR_INVALID_ARGUMENT, "kappa, c, beta_0, beta_1, constant, source_scale");
    EXPECT_ERROR(kfp_operator_set_trainable(op, "beta_2", 1.0, 0), KFP_ERROR_INVALID_ARGUMENT, "beta_0 to beta_1");
    EXPECT_ERROR(kfp_operator_set_trainable(op, "kappa", NAN, 0), KFP_ERROR_NON_FINITE, "initial value");
    EXPECT_ERROR(kfp_operator_set_trainable(op, "kappa", 0.0, KFP_COEF_POSITIVE), KFP_ERROR_INVALID_ARGUMENT, "must be > 0");
    EXPECT_ERROR(kfp_operator_set_trainable(op, "kappa", 1.0, 8), KFP_ERROR_INVALID_ARGUMENT, "unknown flags");
    EXPECT_ERROR(kfp_operator_set_trainable(op, NULL, 1.0, 0), KFP_ERROR_NULL_POINTER, "name");
    const double zero[4] = {0, 0, 0, 0}, drift[2] = {1, 1};
    EXPECT(kfp_operator_create_linear(2, zero, drift, NULL, 0, NULL, &transport) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_operator_set_trainable(transport, "kappa", 1.0, 0), KFP_ERROR_INVALID_ARGUMENT, "no second-order term");
    int64_t count = -1;
    EXPECT(kfp_operator_coefficients(op, NULL, 0, &count) == KFP_OK && count == 0, "count %lld", (long long)count);
    /* κ trainable (positive), c frozen. */
    EXPECT(kfp_operator_set_trainable(op, "kappa", 1.0, KFP_COEF_POSITIVE) == KFP_OK &&
               kfp_operator_set_trainable(op, "c", 0.0, KFP_COEF_FROZEN) == KFP_OK, "%s", kfp_last_error());
    double values[2] = {0, 0};
    const char *name = NULL;
    int64_t flags = -1;
    EXPECT(kfp_operator_coefficients(op, values, 2, &count) == KFP_OK && count == 2 && values[0] == 1.0 && values[1] == 0.0,
           "count %lld values %g %g", (long long)count, values[0], values[1]);
    EXPECT(kfp_operator_coefficient_info(op, 1, &name, &flags) == KFP_OK && strcmp(name, "c") == 0 && flags == KFP_COEF_FROZEN,
           "name %s flags %lld", name ? name : "(null)", (long long)flags);
    EXPECT_ERROR(kfp_operator_coefficient_info(op, 2, &name, NULL), KFP_ERROR_INVALID_ARGUMENT, "outside");
    const double bad_values[2] = {-1, 0};
    EXPECT_ERROR(kfp_operator_set_coefficients(op, bad_values, 2), KFP_ERROR_INVALID_ARGUMENT, "positive");
    EXPECT_ERROR(kfp_operator_set_coefficients(op, bad_values, 1), KFP_ERROR_DIMENSION_MISMATCH, "trainable coefficients");
    EXPECT(kfp_operator_coefficients(op, values, 2, &count) == KFP_OK && values[0] == 1.0, "kappa %g after refused sets", values[0]);

    /* The gradient has one more entry (log κ); an optimizer fixes the set. */
    kfp_net *net = NULL;
    kfp_optimizer *opt = NULL;
    kfp_problem *problem = NULL;
    kfp_batch *batch = NULL;
    const int64_t widths[] = {2, 8, 1};
    EXPECT(kfp_net_create(widths, 3, NULL, NULL, 2, &net) == KFP_OK && kfp_problem_create("heat1d", &problem) == KFP_OK &&
               kfp_problem_sample(problem, 30, 10, 1, NULL, &batch) == KFP_OK, "%s", kfp_last_error());
    int64_t D = 0;
    EXPECT(kfp_net_num_params(net, &D) == KFP_OK, "%s", kfp_last_error());
    double grad[64], loss = 0;
    EXPECT(kfp_loss_and_gradient(net, op, batch, &loss, grad, D + 1) == KFP_OK && grad[D] != 0, "%s; dL/dlog kappa %g", kfp_last_error(), grad[D]);
    EXPECT_ERROR(kfp_loss_and_gradient(net, op, batch, &loss, grad, D + 2), KFP_ERROR_DIMENSION_MISMATCH, "trained coefficients");
    EXPECT(kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_operator_set_trainable(op, "beta_0", 1.0, 0), KFP_ERROR_INVALID_ARGUMENT, "in use by an optimizer");
    double stats[KFP_STAT_COUNT];
    EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK &&
               kfp_operator_coefficients(op, values, 2, &count) == KFP_OK && values[0] != 1.0 && values[1] == 0.0,
           "%s; kappa %g c %g after a step", kfp_last_error(), values[0], values[1]);
    kfp_optimizer_free(opt);

    /* heat1d_inverse trains κ through kfp_train; the record ends with it. */
    kfp_problem *inverse = NULL;
    kfp_operator *inverse_op = NULL;
    kfp_net *inverse_net = NULL;
    EXPECT(kfp_problem_create("heat1d_inverse", &inverse) == KFP_OK && kfp_problem_operator(inverse, &inverse_op) == KFP_OK &&
               kfp_net_create(widths, 3, NULL, NULL, 2, &inverse_net) == KFP_OK &&
               kfp_optimizer_create_engd(inverse_net, inverse_op, &opt) == KFP_OK, "%s", kfp_last_error());
    struct last_record last = {0, 0};
    EXPECT(kfp_train(opt, inverse_net, inverse, train_options(20, 0, 100, 40, NULL, 1, 10, NULL, keep_last, &last), NULL) == KFP_OK,
           "%s", kfp_last_error());
    EXPECT(kfp_operator_coefficients(inverse_op, values, 1, &count) == KFP_OK && count == 1 &&
               last.count == KFP_LOG_COUNT + 1 && last.last == values[0] && values[0] != 1.0,
           "record of %lld values ending in %g, kappa %g", (long long)last.count, last.last, values[0]);
    kfp_optimizer_free(opt); kfp_net_free(inverse_net); kfp_operator_free(inverse_op);

    /* Observations of a problem of one's own: every batch gets them; bad input changes nothing. */
    kfp_problem *own = NULL;
    kfp_batch *sampled = NULL;
    const double lower[2] = {0, 0}, upper[2] = {1, 1}, x_data[4] = {0.5, 0.5, 0.25, 0.75}, y_data[2] = {1, 2};
    const double nan_data[2] = {1, NAN};
    int64_t terms = 0;
    EXPECT(kfp_problem_create_box(op, lower, upper, 2, one, NULL, &own) == KFP_OK &&
               kfp_problem_set_observations(own, x_data, y_data, 2, 2, 10.0) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_problem_set_observations(own, x_data, nan_data, 2, 2, 1.0), KFP_ERROR_NON_FINITE, "observed values");
    EXPECT_ERROR(kfp_problem_set_observations(own, x_data, y_data, 2, 3, 1.0), KFP_ERROR_DIMENSION_MISMATCH, "dim is 3");
    EXPECT_ERROR(kfp_problem_set_observations(own, x_data, y_data, 2, 2, -1.0), KFP_ERROR_INVALID_ARGUMENT, "weight");
    EXPECT_ERROR(kfp_problem_set_observations(inverse, x_data, y_data, 2, 2, 1.0), KFP_ERROR_INVALID_ARGUMENT, "built in");
    int32_t kind = KFP_TERM_INTERIOR;
    double observed[2] = {0, 0}, weight = 0;
    int64_t n = 0;
    EXPECT(kfp_problem_sample(own, 10, 0, 1, NULL, &sampled) == KFP_OK && kfp_batch_num_terms(sampled, &terms) == KFP_OK &&
               terms == 2 && kfp_batch_term(sampled, 1, &kind, &n, &weight, NULL, observed) == KFP_OK &&
               kind == KFP_TERM_OBSERVATION && n == 2 && observed[1] == 2 && weight == 10.0,
           "%s; %lld terms, last of kind %d with %lld values, weight %g", kfp_last_error(), (long long)terms, kind, (long long)n, weight);
    kfp_batch_free(sampled); kfp_problem_free(own); kfp_problem_free(inverse);
    kfp_net_free(net); kfp_batch_free(batch); kfp_problem_free(problem);
    kfp_operator_free(transport); kfp_operator_free(op);
}

static void test_spring(void) {
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_net *net = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL;
    const int64_t widths[] = {2, 8, 1};
    EXPECT(kfp_problem_create("poisson2d_sin", &problem) == KFP_OK && kfp_problem_operator(problem, &op) == KFP_OK &&
               kfp_problem_sample(problem, 40, 12, 1, NULL, &batch) == KFP_OK &&
               kfp_net_create(widths, 3, NULL, NULL, 1, &net) == KFP_OK && kfp_optimizer_create_spring(net, op, &opt) == KFP_OK,
           "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_create_spring(net, op, NULL), KFP_ERROR_NULL_POINTER, "out_optimizer");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_MOMENTUM, 1.0), KFP_ERROR_INVALID_ARGUMENT, "momentum");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 0.0), KFP_ERROR_INVALID_ARGUMENT, "damping");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_NORM_CONSTRAINT, -1.0), KFP_ERROR_INVALID_ARGUMENT, "norm_constraint");
    EXPECT_ERROR(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.5), KFP_ERROR_INVALID_ARGUMENT, "does not apply");
    double momentum = 0, constraint = 0;
    const char *kind = NULL;
    EXPECT(kfp_optimizer_get_double(opt, KFP_OPT_MOMENTUM, &momentum) == KFP_OK && momentum == 0.99 &&
               kfp_optimizer_get_double(opt, KFP_OPT_NORM_CONSTRAINT, &constraint) == KFP_OK && constraint == 1e-3 &&
               kfp_optimizer_kind(opt, &kind) == KFP_OK && strcmp(kind, "spring") == 0,
           "momentum %g, norm constraint %g, kind %s", momentum, constraint, kind ? kind : "(null)");
    double stats[KFP_STAT_COUNT], first = 0, loss = 0;
    EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    first = stats[KFP_STAT_LOSS];
    for (int k = 0; k < 9; k++) EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    EXPECT(kfp_loss(net, op, batch, &loss, NULL, NULL) == KFP_OK && loss < 0.1 * first, "loss %g after 10 steps from %g", loss, first);
    /* The Nystrom variant: a rank above the batch's 52 residuals is refused at the step, nothing changes. */
    EXPECT(kfp_optimizer_set_string(opt, KFP_OPT_VARIANT, "nystrom") == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_optimizer_set_int(opt, KFP_OPT_RANK, 0), KFP_ERROR_INVALID_ARGUMENT, "rank");
    EXPECT_ERROR(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT), KFP_ERROR_INVALID_ARGUMENT, "rank 100");
    double after = 0;
    EXPECT(kfp_loss(net, op, batch, &after, NULL, NULL) == KFP_OK && after == loss, "loss %g after the refused step, %g before", after, loss);
    EXPECT(kfp_optimizer_set_int(opt, KFP_OPT_RANK, 20) == KFP_OK && kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK,
           "%s", kfp_last_error());
    kfp_optimizer_free(opt); kfp_net_free(net); kfp_batch_free(batch); kfp_operator_free(op); kfp_problem_free(problem);
}

static void test_randomized(void) {
    kfp_operator *op = NULL, *indefinite = NULL;
    int32_t kind = -1;
    int64_t probes = -1;
    uint64_t seed = 1;
    EXPECT(kfp_operator_create_poisson(3, &op) == KFP_OK && kfp_operator_estimator(op, &kind, &probes, &seed) == KFP_OK &&
               kind == KFP_ESTIMATOR_EXACT && probes == 0 && seed == 0,
           "kind %d, probes %lld, seed %llu", kind, (long long)probes, (unsigned long long)seed);
    EXPECT_ERROR(kfp_operator_set_estimator(NULL, KFP_ESTIMATOR_RANDOMIZED, 4, 0), KFP_ERROR_NULL_POINTER, "op");
    EXPECT_ERROR(kfp_operator_set_estimator(op, (kfp_estimator)7, 4, 0), KFP_ERROR_INVALID_ARGUMENT, "unknown estimator 7");
    EXPECT_ERROR(kfp_operator_set_estimator(op, KFP_ESTIMATOR_RANDOMIZED, 0, 0), KFP_ERROR_INVALID_ARGUMENT, "at least 1");
    EXPECT_ERROR(kfp_operator_estimator(op, NULL, NULL, NULL), KFP_ERROR_NULL_POINTER, "out_kind");
    EXPECT(kfp_operator_estimator(op, &kind, NULL, NULL) == KFP_OK && kind == KFP_ESTIMATOR_EXACT, "kind %d after refused calls", kind);
    EXPECT(kfp_operator_set_estimator(op, KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN, 4, 5) == KFP_OK &&
               kfp_operator_estimator(op, &kind, &probes, &seed) == KFP_OK && kind == KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN &&
               probes == 4 && seed == 5,
           "kind %d, probes %lld, seed %llu", kind, (long long)probes, (unsigned long long)seed);
    const double c[] = {1, 0, 0, -1};
    EXPECT(kfp_operator_create_linear(2, c, NULL, NULL, 0, NULL, &indefinite) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_operator_set_estimator(indefinite, KFP_ESTIMATOR_RANDOMIZED, 4, 0), KFP_ERROR_INVALID_ARGUMENT, "indefinite");
    kfp_operator_free(indefinite);
    kfp_operator_free(op);

    /* poisson1000d_sq: randomized with 16 Rademacher probes by default; trains; the estimator is fixed once an optimizer exists. */
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL;
    const int64_t widths[] = {1000, 16, 1};
    EXPECT(kfp_problem_create("poisson1000d_sq", &problem) == KFP_OK && kfp_problem_operator(problem, &op) == KFP_OK &&
               kfp_operator_estimator(op, &kind, &probes, NULL) == KFP_OK && kind == KFP_ESTIMATOR_RANDOMIZED && probes == 16,
           "kind %d, probes %lld: %s", kind, (long long)probes, kfp_last_error());
    EXPECT(kfp_problem_sample(problem, 30, 10, 1, NULL, &batch) == KFP_OK && kfp_net_create(widths, 3, NULL, NULL, 1, &net) == KFP_OK &&
               kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK,
           "%s", kfp_last_error());
    double stats[KFP_STAT_COUNT];
    for (int k = 0; k < 5; k++) EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    EXPECT_ERROR(kfp_operator_set_estimator(op, KFP_ESTIMATOR_EXACT, 0, 0), KFP_ERROR_INVALID_ARGUMENT, "in use");
    EXPECT(kfp_operator_estimator(op, &kind, NULL, NULL) == KFP_OK && kind == KFP_ESTIMATOR_RANDOMIZED, "kind %d after the refused change", kind);
    kfp_optimizer_free(opt); kfp_net_free(net); kfp_batch_free(batch); kfp_operator_free(op); kfp_problem_free(problem);
}

/* Communicators standing in for a second process: "mirrored" (the other process holds the same
 * values: a sum doubles them), failing, or gathering another setup's hash. */
static int32_t mirrored_sum(void *context, double *buffer, int64_t count) {
    (void)context;
    for (int64_t i = 0; i < count; i++) buffer[i] *= 2;
    return 0;
}

static int32_t mirrored_gather(void *context, const double *send, int64_t count, double *receive) {
    const double *other = context;   /* NULL: the same values as this process */
    for (int64_t i = 0; i < count; i++) {
        receive[i] = send[i];
        receive[count + i] = other ? other[i] : send[i];
    }
    return 0;
}

static int32_t failing_sum(void *context, double *buffer, int64_t count) {
    (void)context; (void)buffer; (void)count;
    return 7;
}

static kfp_communicator two_processes(kfp_allreduce_sum_function sum, void *context) {
    kfp_communicator c = {sizeof(kfp_communicator), context, 0, 2, sum, mirrored_gather};
    return c;
}

static void test_communicator(void) {
    kfp_operator *op = NULL;
    kfp_net *net = NULL, *reference_net = NULL;
    kfp_optimizer *opt = NULL, *reference = NULL, *spring = NULL;
    const int64_t widths[] = {2, 8, 1};
    EXPECT(kfp_operator_create_poisson(2, &op) == KFP_OK && kfp_net_create(widths, 3, NULL, NULL, 1, &net) == KFP_OK &&
               kfp_net_create(widths, 3, NULL, NULL, 1, &reference_net) == KFP_OK &&
               kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK && kfp_optimizer_create_kfac(reference_net, op, &reference) == KFP_OK &&
               kfp_optimizer_create_spring(net, op, &spring) == KFP_OK,
           "%s", kfp_last_error());
    kfp_communicator good = two_processes(mirrored_sum, NULL), bad = good;
    EXPECT_ERROR(kfp_optimizer_set_communicator(NULL, &good), KFP_ERROR_NULL_POINTER, "optimizer");
    bad.size = 8;
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_INVALID_ARGUMENT, "comm->size");
    bad = good; bad.rank = 2;
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_INVALID_ARGUMENT, "rank 2 of 2");
    bad = good; bad.num_ranks = 0; bad.rank = 0;
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_INVALID_ARGUMENT, "rank 0 of 0");
    bad = good; bad.allgather = NULL;
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_NULL_POINTER, "allgather");
    bad = two_processes(failing_sum, NULL);
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_COMMUNICATION, "returned 7");
    const double other_hash[2] = {1, 2};
    bad = two_processes(mirrored_sum, (void *)other_hash);
    EXPECT_ERROR(kfp_optimizer_set_communicator(opt, &bad), KFP_ERROR_COMMUNICATION, "differ");
    int32_t rank = -1, ranks = -1;
    EXPECT(kfp_optimizer_rank(opt, &rank, &ranks) == KFP_OK && rank == 0 && ranks == 1, "after the refusals: rank %d of %d", rank, ranks);
    EXPECT_ERROR(kfp_optimizer_rank(opt, NULL, &ranks), KFP_ERROR_NULL_POINTER, "out_rank");
    EXPECT_ERROR(kfp_optimizer_set_communicator(spring, &good), KFP_ERROR_INVALID_ARGUMENT, "kernel");
    EXPECT(kfp_optimizer_set_communicator(opt, &good) == KFP_OK && kfp_optimizer_rank(opt, &rank, &ranks) == KFP_OK &&
               rank == 0 && ranks == 2, "%s; rank %d of %d", kfp_last_error(), rank, ranks);

    /* Two mirrored processes with a batch each take the steps of one process with the batch twice. */
    enum { N = 30, M = 12 };
    double x[2 * N * 2], f[2 * N], xb[2 * M * 2], gb[2 * M];
    for (int k = 0; k < N; k++) {
        x[2 * k] = (k + 0.5) / N;
        x[2 * k + 1] = fmod(0.37 * k + 0.11, 1.0);
        f[k] = sin(3 * x[2 * k]) * x[2 * k + 1];
    }
    for (int k = 0; k < M; k++) {
        xb[2 * k] = k % 2;
        xb[2 * k + 1] = (k + 0.5) / M;
        gb[k] = 0.1 * k;
    }
    memcpy(x + 2 * N, x, sizeof(double) * 2 * N);
    memcpy(f + N, f, sizeof(double) * N);
    memcpy(xb + 2 * M, xb, sizeof(double) * 2 * M);
    memcpy(gb + M, gb, sizeof(double) * M);
    kfp_batch *batch = NULL, *doubled = NULL;
    EXPECT(kfp_batch_create(x, f, N, xb, gb, M, 2, &batch) == KFP_OK && kfp_batch_create(x, f, 2 * N, xb, gb, 2 * M, 2, &doubled) == KFP_OK,
           "%s", kfp_last_error());
    double stats[KFP_STAT_COUNT], theta[33], expected[33];
    for (int k = 0; k < 3; k++) {
        EXPECT(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
        EXPECT(kfp_optimizer_step(reference, reference_net, doubled, stats, KFP_STAT_COUNT) == KFP_OK, "%s", kfp_last_error());
    }
    EXPECT(kfp_net_get_params(net, theta, 33) == KFP_OK && kfp_net_get_params(reference_net, expected, 33) == KFP_OK, "%s", kfp_last_error());
    double scale = 0;
    for (int i = 0; i < 33; i++) scale = fmax(scale, fabs(expected[i]));
    EXPECT(max_abs_diff(theta, expected, 33) <= 1e-12 * scale, "max |theta_2 - theta_1| = %g (scale %g)",
           max_abs_diff(theta, expected, 33), scale);
    EXPECT(kfp_optimizer_set_communicator(opt, NULL) == KFP_OK && kfp_optimizer_rank(opt, &rank, &ranks) == KFP_OK && ranks == 1,
           "%s", kfp_last_error());
    kfp_batch_free(batch); kfp_batch_free(doubled);
    kfp_optimizer_free(opt); kfp_optimizer_free(reference); kfp_optimizer_free(spring);
    kfp_net_free(net); kfp_net_free(reference_net); kfp_operator_free(op);
}

int main(void) {
    test_library();
    test_network();
    test_loss();
    test_optimizer();
    test_baselines();
    test_problems();
    test_divergence();
    test_inverse();
    test_spring();
    test_randomized();
    test_communicator();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
