/* The exports target has no declarations of its own (see exports.c). */
