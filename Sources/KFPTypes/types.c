/* The C structs of include/kfacpinn.h: see include/kfp_types.h. */
