/* The link settings of libkfacpinn.so (Package.swift): its export list (exports.map: the kfp_*
 * C ABI and nothing else) and its SONAME. They sit in this target so that the KFACPINN target,
 * which other Swift packages depend on, carries no unsafe flags. */
typedef int kfp_exports_translation_unit;
