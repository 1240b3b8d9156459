#include <vector>

namespace geo {

class Polygon {
public:
    explicit Polygon(int sides) : sides_(sides) {}

    int sides() const {
        return sides_;
    }

private:
    int sides_;
};

}  // namespace geo

template <typename T>
T twice(T value) {
    return value * 2;
}
