/// The library version (semantic versioning). `scripts/generate-header.py`
/// writes these numbers into include/kfacpinn.h as KFP_VERSION_* macros.
public enum Version {
    public static let major = 1
    public static let minor = 1
    public static let patch = 0
    /// "MAJOR.MINOR.PATCH"
    public static let string: StaticString = "1.1.0"
    /// MAJOR·10000 + MINOR·100 + PATCH
    public static var number: Int { major * 10000 + minor * 100 + patch }
}
